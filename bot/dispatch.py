"""Dispatch: the fair queue onto the executor, one task per running job, retries.

:class:`Dispatcher` owns the queue, the executor's slots (the running jobs), the recent job
durations (for ETAs) and the pause after a storage error. A job's run: record ``running`` →
generate → the optional safety check (:mod:`bot.safety`) → write the JPEG → record ``posting``
(or ``generated``) with the check's verdict → hand it to delivery (a flagged image is posted
behind a spoiler, or withheld: recorded failed, never written to disk). An
:class:`~bot.errors.EngineCrashed` runs the job again, up to the attempt cap; anything else
the executor raises is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from bot import texts
from bot.board import Board
from bot.delivery import Delivery
from bot.domain import Generated, Job, JobState
from bot.errors import EngineCrashed, NotAllowed, StorageError, TurbobotError
from bot.fairqueue import FairQueue
from bot.i18n import Message, msg
from bot.image_files import ImageFiles
from bot.metrics import Metrics
from bot.ports import Clock, Executor
from bot.safety import Checked, SafetyCheck
from bot.store import Store, storage_error, verdict_columns
from bot.vlm_jobs import VlmJobs, image_spec

log = logging.getLogger(__name__)

# Until a job has finished, guess this many seconds per job (a 4-step image on a mid-range GPU).
INITIAL_JOB_ESTIMATE_S = 8.0
_RECENT_JOBS = 20  # ETA = moving average over this many recent job durations


class Dispatcher:
    def __init__(
        self,
        executor: Executor,
        store: Store,
        board: Board,
        *,
        delivery: Delivery,
        files: ImageFiles,
        clock: Clock,
        metrics: Metrics,
        release: Callable[[int], None],
        max_attempts: int,
        storage_retry_s: float,
        vlm: VlmJobs,
        safety: SafetyCheck | None = None,
    ) -> None:
        self._executor = executor
        self._vlm = vlm
        self._safety = safety
        self._store = store
        self._board = board
        self._delivery = delivery
        self._files = files
        self._clock = clock
        self._metrics = metrics
        self._release = release  # the job no longer counts against admission's caps
        self._max_attempts = max_attempts
        self._storage_retry_s = storage_retry_s
        self.queue = FairQueue()
        self.running: dict[int, Job] = {}
        self._durations: deque[float] = deque(maxlen=_RECENT_JOBS)
        self._wake = asyncio.Event()
        self._dispatching = True
        self.paused = False
        self._loop_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._busy_since: float | None = None

    # --- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        """Start no more queued jobs (they stay durable); the running ones finish."""
        self._dispatching = False
        self._wake.set()

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    @property
    def alive(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done() and not self.paused

    def resume(self) -> None:
        """Retry now after a storage error instead of waiting for the back-off."""
        self.paused = False
        self._wake.set()

    def push(self, job: Job) -> None:
        """Queue a job (new or recovered) in fair order."""
        self._board.put(job)
        self.queue.push(job)
        self.queue_changed()
        self._wake.set()

    def eta_for_position(self, position: int) -> float:
        """Jobs ahead finish at ``capacity`` per average job time; 0 when a slot is free."""
        capacity = max(1, self._executor.capacity)
        average = (
            sum(self._durations) / len(self._durations)
            if self._durations
            else INITIAL_JOB_ESTIMATE_S
        )
        waiting_for = len(self.running) + position - capacity
        return max(0.0, waiting_for * average / capacity)

    def queue_changed(self) -> None:
        self._metrics.queue_depth.set(len(self.queue))
        self._metrics.in_flight.set(len(self.running))

    async def _loop(self) -> None:
        while True:
            while (
                self._dispatching
                and not self.paused
                and len(self.running) < max(1, self._executor.capacity)
            ):
                job = self.queue.pop()
                if job is None:
                    break
                self._start(job)
            self.queue_changed()
            self._wake.clear()
            await self._wake.wait()

    def _start(self, job: Job) -> None:
        running = replace(
            job, state=JobState.RUNNING, attempts=job.attempts + 1, started_at=self._clock.now()
        )
        self.running[job.id] = running
        self._board.put(running)
        if self._busy_since is None:
            self._busy_since = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._run(running))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def jobs_of(self, user_key: str) -> list[tuple[Job, int]]:
        """A user's running jobs (position 0), then their waiting ones with their positions."""
        running = [(j, 0) for j in self.running.values() if j.requester.user_key == user_key]
        queued = [(j, self.queue.position(j.id)) for j in self.queue.jobs_of(user_key)]
        return sorted(running, key=lambda p: p[0].id) + queued

    async def cancel(self, job: Job) -> Job:
        """Take a waiting job off the queue and record it cancelled; a failed write puts it
        back at the front, so nothing is lost."""
        removed = self.queue.remove(job.id)
        if removed is None:  # running, or already finished
            raise NotAllowed(texts.cannot_cancel(job.id, job.state))
        cancelled = replace(removed, state=JobState.CANCELLED, finished_at=self._clock.now())
        try:
            await self._store.update_job(
                job.id, state=JobState.CANCELLED, finished_at=cancelled.finished_at
            )
        except StorageError:
            self.queue.push_front(removed)
            raise
        self._release(job.id)
        self._board.finish(cancelled)
        self.queue_changed()
        return cancelled

    # --- one job ---------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        started = self._clock.monotonic()
        await self._mark_running(job)
        try:
            if not job.spec.kind.makes_image:
                text = await self._vlm.describe(job)
            else:
                job = await self._vlm.enhanced(job)  # committed first: a retry reuses it
                self.running[job.id] = job
                spec = image_spec(job).spec
                result = await self._executor.generate(
                    job.id, spec, self._delivery.progress_callback(job)
                )
        except EngineCrashed as err:  # retryable: the engine or its worker crashed
            self._leave_executor(job)
            log.warning("job #%d: engine crashed (attempt %d): %s", job.id, job.attempts, err)
            await self._retry_or_fail(job, err)
            return
        except Exception as err:  # GenerationFailed (final), or a bug: never retried
            self._leave_executor(job)
            if not isinstance(err, TurbobotError):
                log.exception("job #%d: unexpected executor error", job.id)
            await self._delivery.fail(job, _failure_text(err), kind="generation")
            return
        elapsed = self._clock.monotonic() - started
        if not job.spec.kind.makes_image:
            self._leave_executor(job)
            await self._store_text(job, text)
            return
        self._metrics.generation_seconds.observe(elapsed)
        # The check is GPU work too: the job keeps its executor slot until it is done.
        checked = await self._safety.check(job, result) if self._safety else None
        self._leave_executor(job)
        if checked is not None and checked.withhold:
            await self._withhold(job, checked)
            return
        verdict = checked.verdict if checked is not None else None
        await self._store_result(replace(job, verdict=verdict), result, elapsed)

    async def _store_text(self, job: Job, text: str) -> None:
        """A describe's text: recorded (``posting``), then handed to delivery, like an image.
        Its duration stays out of the ETA average, which counts images."""
        now = self._clock.now()
        has_adapter = self._delivery.has_notifier(job.requester.platform)
        state = JobState.POSTING if has_adapter else JobState.GENERATED
        try:
            await self._store.update_job(job.id, state=state, text=text, finished_at=now)
        except StorageError as err:
            await self._requeue_after_storage_error(job, err)
            return
        self._release(job.id)
        await self._delivery.generated(replace(job, state=state, text=text, finished_at=now))

    async def _mark_running(self, job: Job) -> None:
        # A crash before this commit lands leaves the row "queued": the job simply runs again.
        try:
            await self._store.update_job(
                job.id, state=JobState.RUNNING, attempts=job.attempts, started_at=job.started_at
            )
        except StorageError as err:
            log.warning("could not record a job as running: %s", err)

    def _leave_executor(self, job: Job) -> None:
        self.running.pop(job.id, None)
        if not self.running and self._busy_since is not None:
            self._metrics.gpu_busy.inc(time.monotonic() - self._busy_since)
            self._busy_since = None
        self._wake.set()

    async def _store_result(self, job: Job, result: Generated, elapsed: float) -> None:
        """Write the JPEG, then record it, then hand it to delivery: in this order, so a row
        that says ``posting`` always has its file, and the send starts only once both are
        durable. A crash after the commit leaves a row that says "posting": reported, never
        sent twice (see :mod:`bot.recovery`)."""
        # One turn of the loop first: the next job, which this one's end released, starts on the
        # executor before the file write's thread wakes and competes with it for the CPU.
        await asyncio.sleep(0)
        now = self._clock.now()
        has_adapter = self._delivery.has_notifier(job.requester.platform)
        state = JobState.POSTING if has_adapter else JobState.GENERATED
        try:
            relative = await self._files.save(job.id, result.jpeg, now)
            images = await self._files.save_images(job.id, result.images, now)
        except OSError as err:
            await self._requeue_after_storage_error(
                job, storage_error(err, msg("core.op.save_image"))
            )
            return
        # The verdict is committed with the result, before any send: a restart posts a flagged
        # image behind its spoiler too.
        fields = {
            "state": state,
            "image_path": relative,
            "timings": result.timings,
            **verdict_columns(job.verdict),
        }
        try:
            if images:  # the grid was posted; each image has its row, in the same commit
                await self._store.record_images(job.id, images, **fields, finished_at=now)
            else:
                await self._store.update_job(job.id, **fields, finished_at=now)
        except StorageError as err:
            await self._requeue_after_storage_error(job, err)
            return
        done = replace(
            job,
            state=state,
            image_path=relative,
            timings=result.timings,
            finished_at=now,
            images=images,
        )
        self._durations.append(elapsed)
        self._release(job.id)
        await self._delivery.generated(done)

    async def _withhold(self, job: Job, checked: Checked) -> None:
        """A flagged image in a server that withholds them: not saved, not posted; the job is
        recorded failed with its verdict and the requester is told why."""
        try:
            await self._store.update_job(job.id, **verdict_columns(checked.verdict))
        except StorageError as err:
            log.warning("job #%d: could not record the withheld verdict: %s", job.id, err)
        withheld = replace(job, verdict=checked.verdict)
        await self._delivery.fail(withheld, msg("core.safety.withheld", job=job.id), "withheld")

    async def _requeue_after_storage_error(self, job: Job, err: StorageError) -> None:
        """Keep the job (it does not count as an attempt) and pause until storage recovers."""
        log.error("job #%d: %s Pausing the queue for %.0f s.", job.id, err, self._storage_retry_s)
        self._metrics.failures.labels(kind="storage").inc()
        queued = replace(job, state=JobState.QUEUED, attempts=job.attempts - 1, started_at=None)
        with contextlib.suppress(StorageError):
            await self._store.update_job(
                job.id,
                state=JobState.QUEUED,
                attempts=queued.attempts,
                image_path=None,
                timings=None,
                finished_at=None,
            )
        self._board.put(queued)
        self.queue.push_front(queued)
        self.paused = True
        asyncio.get_running_loop().call_later(self._storage_retry_s, self.resume)

    async def _retry_or_fail(self, job: Job, err: EngineCrashed) -> None:
        if job.attempts >= self._max_attempts:
            why = texts.crashed_too_often(job.attempts, type(err).__name__)
            await self._delivery.fail(job, why, kind="crash")
            return
        queued = replace(job, state=JobState.QUEUED, started_at=None)
        try:
            await self._store.update_job(job.id, state=JobState.QUEUED)
        except StorageError:
            log.warning("job #%d: could not record the retry; the row says running", job.id)
        self._board.put(queued)
        self.queue.push_front(queued)
        self._wake.set()


def _failure_text(err: Exception) -> Message | str:
    if isinstance(err, TurbobotError):
        return err.message
    return texts.engine_error(type(err).__name__)
