"""Fakes for the core's ports. They satisfy the Protocols in ``bot.ports`` structurally."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bot.domain import Delivered, Generated, GenerationSpec, Job, Platform, StyleInfo, Timings
from bot.errors import EngineCrashed, GenerationFailed
from bot.i18n import Message
from bot.ports import ProgressCallback


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


def tiny_jpeg(seed: int, width: int = 64, height: int = 64) -> bytes:
    """A small real JPEG whose colour depends on the seed, so results can be told apart."""
    colour = (seed % 251, (seed // 251) % 251, (seed * 7) % 251)
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


DEFAULT_STYLES = (
    StyleInfo("watercolor", "Watercolor", "水彩", "Soft washes of colour", 0.8),
    StyleInfo("ink", "Ink wash", "水墨", "Chinese ink painting", 1.0),
)


@dataclass
class FakeExecutor:
    """Generates instantly (or when a test opens the gate) and records every spec it was given.

    ``gate``: when set, each generation waits for it, so a test can hold a job "running".
    ``fail_prompts``: prompts that raise GenerationFailed, to test failure paths.
    """

    capacity: int = 1
    steps_reported: bool = True
    gate: asyncio.Event | None = None
    fail_prompts: set[str] = field(default_factory=set)
    calls: list[tuple[int, GenerationSpec]] = field(default_factory=list)
    style_list: list[StyleInfo] = field(default_factory=lambda: list(DEFAULT_STYLES))
    closed: bool = False
    # Added for the core tests (all optional; defaults keep the behaviour above):
    # ``crash_prompts`` raise EngineCrashed, like a dying worker (retried);
    # ``bug_prompts`` raise a plain RuntimeError, like a bug in an executor (final);
    # ``clock``/``latency_s`` advance a FakeClock per job, so durations and ETAs are known;
    # ``progress_thread`` reports progress from another thread, like the real GPU thread.
    crash_prompts: set[str] = field(default_factory=set)
    bug_prompts: set[str] = field(default_factory=set)
    clock: FakeClock | None = None
    latency_s: float = 0.0
    progress_thread: bool = False
    # ``on_disk``: the styles a rescan finds (None: the same as now); ``rescans`` counts them.
    on_disk: list[StyleInfo] | None = None
    rescans: int = 0

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        self.calls.append((job_id, spec))
        if self.gate is not None:
            await self.gate.wait()
        if spec.prompt in self.fail_prompts:
            raise GenerationFailed("The fake GPU refused this prompt.")
        if spec.prompt in self.crash_prompts:
            raise EngineCrashed("the fake GPU worker died")
        if spec.prompt in self.bug_prompts:
            raise RuntimeError("a bug in the fake executor")
        if self.clock is not None:
            self.clock.advance(self.latency_s)
        if self.steps_reported and self.progress_thread:
            await asyncio.to_thread(_report_steps, on_progress, spec.steps)
        elif self.steps_reported:
            _report_steps(on_progress, spec.steps)
        return Generated(
            jpeg=tiny_jpeg(spec.seed), width=64, height=64, timings=Timings(denoise_ms=1.0)
        )

    def styles(self) -> list[StyleInfo]:
        return list(self.style_list)

    async def rescan_styles(self) -> list[StyleInfo]:
        self.rescans += 1
        if self.on_disk is not None:
            self.style_list = list(self.on_disk)
        return self.styles()

    async def aclose(self) -> None:
        self.closed = True


def is_jpeg(path: str | Path) -> bool:
    """A real file that starts like a JPEG (sync on purpose: tests call it from async code)."""
    return Path(path).is_file() and Path(path).read_bytes()[:2] == b"\xff\xd8"


def _report_steps(on_progress: ProgressCallback, total: int) -> None:
    for step in range(1, total + 1):
        on_progress(step, total)


@dataclass
class RecordingNotifier:
    """A notifier that records what the core asked it to do (a platform that always works)."""

    platform: Platform = Platform.CONSOLE
    progress_events: list[tuple[int, int, int]] = field(default_factory=list)
    delivered: list[tuple[int, str]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    delivered_jobs: list[Job] = field(default_factory=list)  # as the core handed them over
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (channel, message)

    async def progress(self, job: Job, step: int, total: int) -> None:
        self.progress_events.append((job.id, step, total))

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.delivered.append((job.id, jpeg_path))
        self.delivered_jobs.append(job)
        return Delivered(message_id=f"m{job.id}", channel_id=job.requester.channel_id)

    async def failed(self, job: Job, reason: Message | str) -> None:
        self.failures.append((job.id, str(reason)))  # the English text, as the tests read it

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        self.deleted.append((channel_id, message_id))
