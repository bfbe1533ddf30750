"""Fakes for the core's ports. They satisfy the Protocols in ``bot.ports`` structurally.

The executor fake lives beside its port, in :mod:`bot.testing.executor`; it is re-exported here
for the tests' imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.domain import Delivered, Job, Platform
from bot.i18n import Message


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


def is_jpeg(path: str | Path) -> bool:
    """A real file that starts like a JPEG (sync on purpose: tests call it from async code)."""
    return Path(path).is_file() and Path(path).read_bytes()[:2] == b"\xff\xd8"


@dataclass
class RecordingNotifier:
    """A notifier that records what the core asked it to do (a platform that always works)."""

    platform: Platform = Platform.CONSOLE
    progress_events: list[tuple[int, int, int]] = field(default_factory=list)
    delivered: list[tuple[int, str]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    delivered_jobs: list[Job] = field(default_factory=list)  # as the core handed them over
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (channel, message)
    texts: list[tuple[int, str]] = field(default_factory=list)  # describe results posted

    async def progress(self, job: Job, step: int, total: int) -> None:
        self.progress_events.append((job.id, step, total))

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.delivered.append((job.id, jpeg_path))
        self.delivered_jobs.append(job)
        return Delivered(message_id=f"m{job.id}", channel_id=job.requester.channel_id)

    async def deliver_text(self, job: Job) -> Delivered:
        self.texts.append((job.id, job.text or ""))
        self.delivered_jobs.append(job)
        return Delivered(message_id=f"t{job.id}", channel_id=job.requester.channel_id)

    async def failed(self, job: Job, reason: Message | str) -> None:
        self.failures.append((job.id, str(reason)))  # the English text, as the tests read it

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        self.deleted.append((channel_id, message_id))
