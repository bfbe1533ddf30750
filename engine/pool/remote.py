"""The distributed executor: the core's :class:`bot.ports.Executor` over a pool of GPU workers.

Jobs travel through arq on Redis to ``turbobot worker`` processes (see :mod:`engine.pool.worker`).
The bot keeps admission, fairness and history; this executor only carries one job at a time per
live worker, so the Redis queue stays shallow. No torch here: the bot may run without a GPU.

How one generation travels:

1. ``generate`` takes a fresh arq job id ``turbobot-<job>-<n>`` (``n`` from a Redis counter) and
   enqueues it; arq refuses a second job with the same id, so a retried enqueue (a lost reply)
   never runs the work twice.
2. The worker pushes ``[step, total]`` events, then ``done``, onto a Redis list; the executor
   waits on it with ``BLPOP`` (no busy polling) and checks the job's state whenever it wakes.
3. The result (JSON) carries sizes and timings; the JPEG travels as raw bytes in its own key.

Failures: payloads are JSON, never pickle. A worker that dies mid-job stops heart-beating; after
``3 x heartbeat`` the job is aborted and :class:`WorkerLost` raised, which the core retries
(with its attempt cap) under a new id, on another worker. arq runs each id at most once
(``max_tries=1``): retries are the core's, so the cap counts every try. If Redis restarts and
loses the job, the executor enqueues it again under the same id. While Redis is unreachable the
executor waits for it rather than failing jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from arq.connections import ArqRedis, create_pool
from arq.constants import abort_jobs_ss
from arq.jobs import Job, JobResult, JobStatus

from bot import texts
from bot.domain import (
    MAX_IMAGES,
    MAX_INPUT_BYTES,
    Generated,
    GenerationSpec,
    StyleInfo,
    StyleScan,
)
from bot.errors import GenerationFailed, ShuttingDown
from bot.i18n import from_wire, msg
from bot.ports import ProgressCallback
from bot.slices import PoolSettings
from engine.pool.unsupported import NotOnTheWire
from engine.pool.wire import (
    ATTEMPT_PREFIX,
    DONE,
    EVENTS_PREFIX,
    INPUT_PREFIX,
    JOB_FUNCTION,
    KEEP_S,
    LIVENESS_BEATS,
    QUEUE,
    REDIS_ERRORS,
    RESCAN_KEY,
    WORKER_PREFIX,
    PoolStats,
    WorkerLost,
    WorkerView,
    awaited,
    image_key,
    input_file,
    input_too_large,
    json_dumps,
    json_loads,
    redis_settings,
    spec_to_wire,
    timings_from_wire,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    heartbeat_s: float = 2.0
    job_timeout_s: float = 180.0

    @property
    def liveness_s(self) -> float:
        """A heartbeat older than this means the worker is gone."""
        return LIVENESS_BEATS * self.heartbeat_s

    @property
    def wake_s(self) -> float:
        """Longest wait on the event list before the job's state is checked again."""
        return min(1.0, self.heartbeat_s)

    @classmethod
    def from_settings(cls, settings: PoolSettings) -> RemoteConfig:
        return cls(
            heartbeat_s=settings.worker_heartbeat_s, job_timeout_s=settings.worker_job_timeout_s
        )


@dataclass(slots=True)
class _Watch:
    """What the executor has seen of one arq job while waiting for it (monotonic seconds)."""

    started: float | None = None
    orphan_since: float | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    init: bytes | None = None  # the init image, sent beside the payload (and again if lost)


class RemoteExecutor(NotOnTheWire):
    """Dispatches to ``turbobot worker`` processes. Build it with :func:`open_remote_executor`.

    ``capacity`` is the number of live, ready workers, but at least 1: with no worker the core
    still hands over one job, which waits in the Redis queue until a worker starts, so nothing
    stalls and nothing is lost. The core re-reads ``capacity`` whenever a job ends or arrives.
    """

    def __init__(self, redis: ArqRedis, config: RemoteConfig, data_dir: Path) -> None:
        self._redis = redis
        self._config = config
        self._data_dir = data_dir  # the bot's: init images are read here and sent as bytes
        self._workers: dict[str, WorkerView] = {}
        self._in_flight = 0
        self._redis_ok = True
        self._closed = False
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the workers once, then keep the view fresh in the background."""
        await self._retrying(self.refresh)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    # --- bot.ports.Executor ----------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return max(1, sum(w.ready for w in self._workers.values()))

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        if self._closed:
            raise ShuttingDown(texts.SHUTTING_DOWN)
        self._in_flight += 1
        arq_id: str | None = None
        try:
            init = await self._read_init(spec)
            attempt = await self._retrying(lambda: self._next_attempt(job_id))
            arq_id = f"turbobot-{job_id}-{attempt}"
            payload = {"job_id": job_id, "spec": spec_to_wire(spec)}
            if init is not None:
                payload["input"] = INPUT_PREFIX + arq_id
            watch = _Watch(payload=payload, init=init)
            await self._retrying(lambda: self._enqueue(arq_id, watch))
            return await self._await_result(arq_id, watch, on_progress)
        finally:
            self._in_flight -= 1
            if arq_id is not None:
                await self._cleanup(arq_id)

    def styles(self) -> list[StyleInfo]:
        """The union of what the live workers advertise (a style on any worker is usable:
        workers share the same style folder in practice; the first advertised wins)."""
        seen: dict[str, StyleInfo] = {}
        for worker in self._workers.values():
            for style in worker.styles:
                seen.setdefault(style.name, style)
        return sorted(seen.values(), key=lambda s: s.name)

    async def rescan_styles(self) -> StyleScan:
        """Ask every worker to rescan; wait (a few heartbeats at most) until they have.

        Workers advertise their usable styles only: refused folders are in each worker's log."""
        epoch = await self._retrying(lambda: self._redis.incr(RESCAN_KEY))
        deadline = time.monotonic() + self._config.liveness_s
        while time.monotonic() < deadline:
            await self._retrying(self.refresh)
            if all(w.rescan_epoch >= epoch for w in self._workers.values()):
                break
            await asyncio.sleep(self._config.heartbeat_s / 4)
        return StyleScan(tuple(self.styles()))

    async def aclose(self) -> None:
        self._closed = True
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)

    # --- for /healthz and /metrics ---------------------------------------------------------

    def stats(self) -> PoolStats:
        """Workers (GPU, state, jobs done), jobs in flight and whether Redis answers."""
        workers = tuple(sorted(self._workers.values(), key=lambda w: w.id))
        return PoolStats(workers=workers, in_flight=self._in_flight, redis_ok=self._redis_ok)

    async def refresh(self) -> None:
        """Re-read every worker's heartbeat (expired ones are gone from Redis)."""
        keys = [key async for key in self._redis.scan_iter(match=WORKER_PREFIX + "*", count=200)]
        values = await self._redis.mget(keys) if keys else []
        workers: dict[str, WorkerView] = {}
        for raw in values:
            if raw is None:
                continue  # expired between SCAN and MGET
            try:
                view = WorkerView.from_wire(json_loads(raw))
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring a malformed worker heartbeat")
                continue
            workers[view.id] = view
        self._workers = workers

    # --- one job ---------------------------------------------------------------------------

    async def _next_attempt(self, job_id: int) -> int:
        # Counted in Redis, not here: ids stay fresh across bot restarts, so an old result
        # (kept for a while by arq) never answers for a new try.
        key = ATTEMPT_PREFIX + str(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, KEEP_S * 24)
            attempt, _ = await pipe.execute()
        return int(attempt)

    async def _read_init(self, spec: GenerationSpec) -> bytes | None:
        """The init image's bytes (img2img kinds): the worker has its own disk, so the image
        travels through Redis, capped at the core's own input limit."""
        if spec.init_image is None:
            return None
        path = input_file(self._data_dir, spec.init_image)
        try:
            size = path.stat().st_size
        except OSError:
            raise GenerationFailed(msg("engine.input_gone")) from None
        if size > MAX_INPUT_BYTES:
            raise input_too_large(size)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise GenerationFailed(msg("engine.input_gone")) from None

    async def _enqueue(self, arq_id: str, watch: _Watch) -> None:
        if watch.init is not None:  # first: a worker may take the job the moment it is queued
            await self._redis.set(INPUT_PREFIX + arq_id, watch.init, ex=KEEP_S)
        # None means a job with this id exists already: that one is ours, keep waiting for it.
        await self._redis.enqueue_job(
            JOB_FUNCTION, watch.payload, _job_id=arq_id, _queue_name=QUEUE
        )

    async def _await_result(
        self, arq_id: str, watch: _Watch, on_progress: ProgressCallback
    ) -> Generated:
        events = EVENTS_PREFIX + arq_id
        while True:
            item = await self._retrying(lambda: self._wait_event(events))
            if item is not None and item[1] != DONE:
                step, total = json_loads(item[1])
                on_progress(int(step), int(total))
                continue
            outcome = await self._retrying(lambda: self._check(arq_id, watch))
            if outcome is not None:
                return outcome

    async def _wait_event(self, key: str) -> tuple[bytes, bytes] | None:
        # Fractional BLPOP timeouts work since Redis 6; redis-py's stub says int.
        reply = self._redis.blpop([key], timeout=self._config.wake_s)  # type: ignore[arg-type]
        return cast("tuple[bytes, bytes] | None", await awaited(reply))

    async def _check(self, arq_id: str, watch: _Watch) -> Generated | None:
        """The result if there is one; None to keep waiting; raises when the job is lost."""
        job = Job(arq_id, self._redis, _queue_name=QUEUE, _deserializer=json_loads)
        info = await job.result_info()
        if info is not None:
            return await self._outcome(arq_id, info)
        status = await job.status()
        if status is JobStatus.not_found:
            log.warning("job %s vanished from Redis (restarted?); enqueueing it again", arq_id)
            await self._enqueue(arq_id, watch)
            watch.started = watch.orphan_since = None
        elif status is JobStatus.in_progress:
            await self._check_running(arq_id, watch)
        return None

    async def _check_running(self, arq_id: str, watch: _Watch) -> None:
        now = time.monotonic()
        watch.started = watch.started or now
        runner_alive = any(w.busy == arq_id for w in self._workers.values())
        watch.orphan_since = None if runner_alive else watch.orphan_since or now
        orphaned = watch.orphan_since is not None and now - watch.orphan_since > (
            self._config.liveness_s
        )
        overdue = now - watch.started > self._config.job_timeout_s + self._config.liveness_s
        if orphaned or overdue:
            # Abort so no worker starts this id later; the core retries under a new id.
            await self._redis.zadd(abort_jobs_ss, {arq_id: int(time.time() * 1000)})
            why = "stopped answering" if orphaned else "took too long"
            log.warning("job %s: the worker running it %s; giving it back to the core", arq_id, why)
            raise WorkerLost(msg("engine.worker_stopped" if orphaned else "engine.worker_too_slow"))

    async def _outcome(self, arq_id: str, info: JobResult) -> Generated:
        if not info.success:  # arq's own failure: timeout, abort, a crash in the job function
            raise WorkerLost(msg("engine.worker_gave_up", why=str(info.result)))
        result: dict[str, Any] = info.result
        if not result["ok"]:
            if result["retry"]:
                raise WorkerLost(from_wire(result["error"]))
            raise GenerationFailed(from_wire(result["error"]))
        count = int(result.get("images", 0))
        keys = [image_key(arq_id), *(image_key(arq_id, k) for k in range(count))]
        jpeg, *images = await self._redis.mget(keys)
        if jpeg is None or None in images:
            raise WorkerLost(msg("engine.result_lost"))
        return Generated(
            jpeg=jpeg,
            width=int(result["width"]),
            height=int(result["height"]),
            timings=timings_from_wire(result["timings"]),
            images=tuple(images),
        )

    async def _cleanup(self, arq_id: str) -> None:
        keys = (
            EVENTS_PREFIX + arq_id,
            INPUT_PREFIX + arq_id,
            image_key(arq_id),
            *(image_key(arq_id, k) for k in range(MAX_IMAGES)),
            "arq:result:" + arq_id,
        )
        try:
            await self._redis.delete(*keys)
        except REDIS_ERRORS:
            log.debug("cleanup of %s skipped: Redis unreachable (the keys expire)", arq_id)

    # --- plumbing --------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_s)
            try:
                await self.refresh()
            except REDIS_ERRORS as err:
                self._note_outage(err)
            else:
                self._redis_ok = True

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis operation until Redis answers: an outage delays jobs, it loses none."""
        delay = 0.1
        while True:
            try:
                result = await op()
            except REDIS_ERRORS as err:
                self._note_outage(err)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
            else:
                self._redis_ok = True
                return result

    def _note_outage(self, err: BaseException) -> None:
        if self._redis_ok:
            log.warning("Redis unreachable (%s); waiting for it", type(err).__name__)
        self._redis_ok = False


@asynccontextmanager
async def open_remote_executor(settings: PoolSettings) -> AsyncIterator[RemoteExecutor]:
    """Connect to ``REDIS_URL``, read the workers, and close the connection afterwards."""
    redis = await create_pool(
        redis_settings(settings.redis_url.get_secret_value()),
        job_serializer=json_dumps,
        job_deserializer=json_loads,
        default_queue_name=QUEUE,
    )
    executor = RemoteExecutor(redis, RemoteConfig.from_settings(settings), settings.data_dir)
    try:
        await executor.start()
        yield executor
    finally:
        await executor.aclose()
        await redis.aclose()
