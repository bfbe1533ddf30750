"""Delivery: progress, results and failures back to the chat platforms.

:class:`Delivery` owns the notifiers (one per platform), what waits for a platform whose
adapter is not registered yet, the progress pumps and its own background tasks. Posting is
at-most-once: ``posting`` is committed before the send and ``posted`` after, so a crash in
between is reported (see :mod:`bot.recovery`), never sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from bot import access, texts
from bot.board import Board
from bot.domain import Job, JobState, Platform
from bot.errors import StorageError, TurbobotError
from bot.i18n import Message, msg
from bot.image_files import ImageFiles
from bot.metrics import Metrics
from bot.ports import Clock, Notifier, ProgressCallback
from bot.store import Store

log = logging.getLogger(__name__)


class _ProgressPump:
    """Forwards one job's progress in order, skipping steps a slow platform cannot keep up with."""

    def __init__(self, send: Callable[[int, int], Awaitable[None]]) -> None:
        self._send = send
        self._latest: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def push(self, step: int, total: int) -> None:
        self._latest = (step, total)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._latest is not None:
            step, total = self._latest
            self._latest = None
            try:
                await self._send(step, total)
            except Exception:
                log.exception("progress update failed (ignored)")

    async def drain(self) -> None:
        # Progress callbacks posted from the executor's thread land on the loop in order;
        # one turn of the loop lets the last of them arrive before the final message.
        await asyncio.sleep(0)
        if self._task is not None:
            await self._task


@dataclass(frozen=True, slots=True)
class _Parked:
    """A message for a platform whose adapter is not registered yet (e.g. during recovery)."""

    job: Job
    failure: Message | str | None  # None: deliver the image


class Delivery:
    def __init__(
        self,
        store: Store,
        board: Board,
        files: ImageFiles,
        *,
        clock: Clock,
        metrics: Metrics,
        release: Callable[[int], None],
        storage_retry_s: float,
    ) -> None:
        self._store = store
        self._board = board
        self._files = files
        self._clock = clock
        self._metrics = metrics
        self._release = release  # the job no longer counts against admission's caps
        self._storage_retry_s = storage_retry_s
        self._notifiers: dict[Platform, Notifier] = {}
        self._parked: defaultdict[Platform, list[_Parked]] = defaultdict(list)
        self._pumps: dict[int, _ProgressPump] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def register(self, notifier: Notifier) -> None:
        """Route results for ``notifier.platform`` to it; hands over anything parked for it."""
        self._notifiers[notifier.platform] = notifier
        for parked in self._parked.pop(notifier.platform, []):
            if parked.failure is None:
                self.schedule(parked.job)
            else:
                self._spawn(self._tell_failed(parked.job, parked.failure))

    def has_notifier(self, platform: Platform) -> bool:
        return platform in self._notifiers

    # --- progress --------------------------------------------------------------------------

    def progress_callback(self, job: Job) -> ProgressCallback:
        loop = asyncio.get_running_loop()

        async def send(step: int, total: int) -> None:
            notifier = self._notifiers.get(job.requester.platform)
            if notifier is not None:
                latest = self._board.get(job.id) or job
                await notifier.progress(access.outward(latest), step, total)

        pump = _ProgressPump(send)
        self._pumps[job.id] = pump

        def on_progress(step: int, total: int) -> None:
            # May run on the executor's thread: hop onto the loop before touching anything.
            loop.call_soon_threadsafe(pump.push, step, total)

        return on_progress

    async def _drain_progress(self, job_id: int) -> None:
        pump = self._pumps.pop(job_id, None)
        if pump is not None:
            await pump.drain()

    # --- results ---------------------------------------------------------------------------

    async def generated(self, done: Job) -> None:
        """A result whose file and row (``posting``, or ``generated`` when its platform has no
        adapter yet) are durable: post it now, or park it for the adapter."""
        self._board.put(done)
        notifier = self._notifiers.get(done.requester.platform)
        if notifier is None or done.state is not JobState.POSTING:
            self._parked[done.requester.platform].append(_Parked(done, None))
        else:
            await self._post(done, notifier)

    def schedule(self, job: Job) -> None:
        """Deliver a ``generated`` job (recovered, or made while its adapter was away)."""
        notifier = self._notifiers.get(job.requester.platform)
        if notifier is None:
            self._parked[job.requester.platform].append(_Parked(job, None))
            return
        self._spawn(self._deliver(job, notifier))

    async def _deliver(self, job: Job, notifier: Notifier) -> None:
        if job.spec.kind.makes_image and self._files.find(job.image_path) is None:
            await self.fail(job, texts.IMAGE_MISSING, "storage")
            return
        try:
            await self._store.update_job(job.id, state=JobState.POSTING)
        except StorageError as err:
            log.error("job #%d: %s Will retry delivery.", job.id, err)  # noqa: TRY400
            asyncio.get_running_loop().call_later(self._storage_retry_s, self.schedule, job)
            return
        await self._post(replace(job, state=JobState.POSTING), notifier)

    async def _post(self, posting: Job, notifier: Notifier) -> None:
        """Send a job whose ``posting`` state is committed; record ``posted`` after."""
        job = posting
        self._board.put(posting)
        await self._drain_progress(job.id)
        path = self._files.find(job.image_path)
        if path is None and job.spec.kind.makes_image:
            await self.fail(job, texts.IMAGE_MISSING, "storage")
            return
        try:
            if path is None:  # a describe: its text is the result
                delivered = await notifier.deliver_text(access.outward(posting))
            else:
                delivered = await notifier.deliver(access.outward(posting), str(path))
        except Exception as err:
            log.exception("job #%d: delivery failed", job.id)
            why = err.message if isinstance(err, TurbobotError) else msg("core.platform_refused")
            await self.fail(posting, texts.not_posted(why), kind="delivery")
            return
        posted = replace(
            posting,
            state=JobState.POSTED,
            posted_message_id=delivered.message_id,
            posted_file_ref=delivered.file_ref,
        )
        try:
            await self._store.update_job(
                job.id,
                state=JobState.POSTED,
                posted_message_id=delivered.message_id,
                posted_channel_id=delivered.channel_id,
                file_ref=delivered.file_ref,
            )
        except StorageError as err:
            # The row stays "posting": after a restart it is reported, never posted again.
            log.error("job #%d was posted but not recorded: %s", job.id, err)  # noqa: TRY400
        self._metrics.job_latency.observe(max(0.0, self._clock.now() - job.created_at))
        self._metrics.jobs.labels(state="posted").inc()
        self._board.finish(posted)

    # --- failures --------------------------------------------------------------------------

    async def fail(self, job: Job, reason: Message | str, kind: str) -> None:
        """Record ``job`` as failed and tell its user why (in their chat's language: the
        record keeps the English text, the notifier gets the message)."""
        error = str(reason)
        failed = replace(job, state=JobState.FAILED, error=error, finished_at=self._clock.now())
        try:
            await self._store.update_job(
                job.id, state=JobState.FAILED, error=error, finished_at=failed.finished_at
            )
        except StorageError as err:
            log.error("job #%d failed, unrecorded: %s (%s)", job.id, err, reason)  # noqa: TRY400
        log.info("job #%d failed: %s", job.id, reason)
        self._metrics.failures.labels(kind=kind).inc()
        self._metrics.jobs.labels(state="failed").inc()
        self._release(job.id)
        self._board.finish(failed)
        await self._tell_failed(failed, reason)

    async def _tell_failed(self, job: Job, reason: Message | str) -> None:
        await self._drain_progress(job.id)
        notifier = self._notifiers.get(job.requester.platform)
        if notifier is None:
            self._parked[job.requester.platform].append(_Parked(job, reason))
            return
        try:
            await notifier.failed(access.outward(job), reason)
        except Exception:
            log.exception("job #%d: could not tell the user about a failure", job.id)

    # --- the bot's own posts ---------------------------------------------------------------

    def delete_posts(self, platform: Platform, posts: list[tuple[str, str]]) -> None:
        """Ask the platform to delete the bot's own posts of a user who left (best effort)."""
        notifier = self._notifiers.get(platform)
        if notifier is not None and posts:
            self._spawn(_delete_messages(notifier, posts))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def _delete_messages(notifier: Notifier, posts: list[tuple[str, str]]) -> None:
    for channel_id, message_id in posts:
        try:
            await notifier.delete_message(channel_id, message_id)
        except Exception as err:
            log.warning("could not delete a post of a forgotten user: %s", type(err).__name__)
