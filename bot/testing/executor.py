"""The one fake :class:`bot.ports.Executor`: configurable enough for every test and benchmark.

It satisfies the Protocol structurally (no inheritance). By default it answers at once with a
small real JPEG whose colour depends on the seed and reports every step; each field below turns
on one behaviour a test or benchmark needs.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from bot.domain import (
    VLM_FEATURES,
    Generated,
    GenerationSpec,
    ImageVerdict,
    Language,
    RefusedStyle,
    StyleInfo,
    StyleScan,
    Timings,
    VlmAvailability,
    VlmFeature,
)
from bot.errors import EngineCrashed, GenerationFailed
from bot.ports import ProgressCallback

SIZE = 64  # the fake's images are SIZE x SIZE, whatever the spec asks


class Advancing(Protocol):
    """A test clock that moves only when told (``tests.fakes.FakeClock``)."""

    def advance(self, seconds: float) -> None: ...


def tiny_jpeg(seed: int, width: int = SIZE, height: int = SIZE) -> bytes:
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

    Outcomes: ``fail_prompts`` raise GenerationFailed (final); ``crash_prompts`` raise
    EngineCrashed, like a dying worker (retried); ``bug_prompts`` a plain RuntimeError, like a
    bug in an executor (final).
    Time: ``gate``, when set, is awaited first, so a test can hold a job "running";
    ``clock``/``latency_s`` advance a fake clock per job, so durations and ETAs are known;
    ``sleep_s`` really waits that long per job, step by step (benchmarks: a GPU stand-in);
    ``serial`` lets one job run at a time, like one GPU.
    Progress: ``steps_reported`` (every step, or none); ``progress_thread`` reports from another
    thread, like the real GPU thread.
    Output: ``jpeg`` replaces the per-seed JPEG (a benchmark's realistic size).
    Styles: ``style_list`` now, ``on_disk`` what a rescan finds (None: the same as now),
    ``refused`` the folders a rescan reports as refused.
    Safety check: ``verdicts`` answers per image in order (a number is the score, flagged above
    0; "fail" raises GenerationFailed; "hang" waits forever, for the core's time limit; the
    last answer repeats; empty: every image is clean); ``check_available`` False answers None
    (no VLM); ``checked`` records (job, JPEG) per image checked.
    VLM: ``vlm`` what it says it can do (all by default); ``described`` the raw text a describe
    returns (``{language}`` filled in), an enhance returns the prompt with ``enhanced_suffix``;
    ``vlm_calls`` records (job, kind, max_new_tokens, time_limit_s).
    Records: ``calls`` (job, spec); ``handed`` (job, when it arrived) and ``runs`` (job, start,
    end), in ``time.perf_counter`` seconds; ``rescans``; ``closed``.
    """

    capacity: int = 1
    steps_reported: bool = True
    gate: asyncio.Event | None = None
    fail_prompts: set[str] = field(default_factory=set)
    crash_prompts: set[str] = field(default_factory=set)
    bug_prompts: set[str] = field(default_factory=set)
    calls: list[tuple[int, GenerationSpec]] = field(default_factory=list)
    style_list: list[StyleInfo] = field(default_factory=lambda: list(DEFAULT_STYLES))
    closed: bool = False
    clock: Advancing | None = None
    latency_s: float = 0.0
    sleep_s: float = 0.0
    serial: bool = False
    progress_thread: bool = False
    jpeg: bytes | None = None
    on_disk: list[StyleInfo] | None = None
    refused: list[RefusedStyle] = field(default_factory=list)
    rescans: int = 0
    handed: list[tuple[int, float]] = field(default_factory=list)
    runs: list[tuple[int, float, float]] = field(default_factory=list)
    verdicts: list[float | str] = field(default_factory=list)
    check_available: bool = True
    checked: list[tuple[int, bytes]] = field(default_factory=list)
    vlm: VlmAvailability = field(
        default_factory=lambda: VlmAvailability(
            tuple(VlmFeature(name, True, "the fake model can") for name in VLM_FEATURES)
        )
    )
    described: str = "A small square picture, described in {language}."
    enhanced_suffix: str = ", highly detailed, soft light"
    vlm_calls: list[tuple[int, str, int, float]] = field(default_factory=list)
    _gpu: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def vlm_availability(self) -> VlmAvailability:
        return self.vlm

    async def describe(
        self,
        job_id: int,
        image: bytes,
        language: Language,
        *,
        max_new_tokens: int,
        time_limit_s: float,
    ) -> str:
        self.vlm_calls.append((job_id, "describe", max_new_tokens, time_limit_s))
        if self.gate is not None:
            await self.gate.wait()
        Image.open(io.BytesIO(image)).verify()  # the core hands over a real image file
        return self.described.format(language=language.value)

    async def enhance(
        self, job_id: int, prompt: str, *, max_new_tokens: int, time_limit_s: float
    ) -> str:
        self.vlm_calls.append((job_id, "enhance", max_new_tokens, time_limit_s))
        self._raise_for(prompt)
        return prompt + self.enhanced_suffix

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        self.calls.append((job_id, spec))
        self.handed.append((job_id, time.perf_counter()))
        if self.gate is not None:
            await self.gate.wait()
        self._raise_for(spec.prompt)
        if self.serial:
            async with self._gpu:
                await self._run(job_id, spec, on_progress)
        else:
            await self._run(job_id, spec, on_progress)
        jpeg = self.jpeg if self.jpeg is not None else tiny_jpeg(spec.seed)
        denoise_ms = self.sleep_s * 1e3 * spec.cost if self.sleep_s else 1.0
        # Several images come back one JPEG each beside the grid, as the local engine does.
        images = tuple(self.jpeg or tiny_jpeg(seed) for seed in spec.seeds) if spec.n > 1 else ()
        timings = Timings(denoise_ms=denoise_ms)
        return Generated(jpeg=jpeg, width=SIZE, height=SIZE, timings=timings, images=images)

    def _raise_for(self, prompt: str) -> None:
        if prompt in self.fail_prompts:
            raise GenerationFailed("The fake GPU refused this prompt.")
        if prompt in self.crash_prompts:
            raise EngineCrashed("the fake GPU worker died")
        if prompt in self.bug_prompts:
            raise RuntimeError("a bug in the fake executor")

    async def _run(self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback) -> None:
        start = time.perf_counter()
        if self.clock is not None:
            self.clock.advance(self.latency_s)
        if self.sleep_s:
            await self._sleep_steps(spec.steps, on_progress, spec.cost)
        elif self.steps_reported and self.progress_thread:
            await asyncio.to_thread(_report_steps, on_progress, spec.steps)
        elif self.steps_reported:
            _report_steps(on_progress, spec.steps)
        self.runs.append((job_id, start, time.perf_counter()))

    async def _sleep_steps(self, steps: int, on_progress: ProgressCallback, cost: int) -> None:
        for step in range(1, steps + 1):
            await asyncio.sleep(self.sleep_s * cost / steps)  # GPU time grows with the images
            if self.steps_reported:
                on_progress(step, steps)

    def styles(self) -> list[StyleInfo]:
        return list(self.style_list)

    async def rescan_styles(self) -> StyleScan:
        self.rescans += 1
        if self.on_disk is not None:
            self.style_list = list(self.on_disk)
        return StyleScan(tuple(self.styles()), tuple(self.refused))

    async def check_image(self, job_id: int, jpeg: bytes, policy: str) -> ImageVerdict | None:
        if not self.check_available:
            return None
        self.checked.append((job_id, jpeg))
        n = len(self.checked) - 1
        answer = self.verdicts[min(n, len(self.verdicts) - 1)] if self.verdicts else -1.0
        if answer == "fail":
            raise GenerationFailed("The fake GPU failed the safety check.")
        if answer == "hang":
            await asyncio.Event().wait()
        score = float(answer)
        return ImageVerdict(flagged=score > 0, score=score, policy=policy)

    async def aclose(self) -> None:
        self.closed = True


def _report_steps(on_progress: ProgressCallback, total: int) -> None:
    for step in range(1, total + 1):
        on_progress(step, total)
