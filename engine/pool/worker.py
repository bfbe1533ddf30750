"""``turbobot worker``: one GPU worker of the pool behind a bot that has ``REDIS_URL``.

Run one per GPU (``CUDA_VISIBLE_DEVICES=1 turbobot worker``; torch then sees that card as
device 0). The worker opens the executor it is given once (:mod:`bot.entry.worker` passes the
local engine, whose styles stay resident), then runs an arq worker with ``max_jobs=1`` whose job
function awaits it. It needs only an outbound connection to Redis.

Beside arq, a heartbeat key (``turbobot:worker:<id>``, expiring after 3 beats) advertises the
worker: GPU, styles, the job it runs, jobs done, consecutive failures, and ``ready`` or
``resting``. The bot counts ready workers as its capacity and notices a dead one when its key
expires. A worker whose jobs fail ``TURBOBOT_WORKER_MAX_FAILURES`` times in a row (engine
crashes, not bad requests) rests: it takes no job for ``TURBOBOT_WORKER_REST_S`` seconds.
If Redis goes away the worker keeps its engine loaded and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, create_pool
from arq.worker import Worker, func

from bot.domain import MAX_INPUT_BYTES, GenerationSpec
from bot.errors import GenerationFailed, TurbobotError
from bot.i18n import Message, msg, to_wire
from bot.ports import Executor
from bot.slices import PoolSettings
from engine.pool.wire import (
    DONE,
    EVENTS_PREFIX,
    INPUT_DIR,
    JOB_FUNCTION,
    KEEP_S,
    LIVENESS_BEATS,
    QUEUE,
    READY,
    REDIS_ERRORS,
    RESCAN_KEY,
    RESTING,
    WORKER_PREFIX,
    WorkerLost,
    WorkerView,
    awaited,
    image_key,
    input_too_large,
    json_dumps,
    json_loads,
    redis_settings,
    spec_from_wire,
    timings_to_wire,
)

log = logging.getLogger(__name__)

STATE = "turbobot"  # key of the WorkerState in arq's ctx
_DRAIN_S = 600.0  # on stop, the job in flight gets this long to finish


class WorkerState:
    """What this worker advertises, updated by the job hooks and the heartbeat."""

    def __init__(
        self, worker_id: str, gpu: str, executor: Executor, settings: PoolSettings
    ) -> None:
        self.id = worker_id
        self.host = socket.gethostname()
        self.gpu = gpu
        self.executor = executor
        self.heartbeat_s = settings.worker_heartbeat_s
        self.max_failures = settings.worker_max_failures
        self.rest_s = settings.worker_rest_s
        self.data_dir = settings.data_dir  # init images sent with a job are kept here meanwhile
        self.busy: str | None = None
        self.jobs_done = 0
        self.failures = 0  # in a row, the worker's fault
        self.rest_until: float | None = None
        self.rescan_epoch = 0
        self.arq: Worker | None = None

    @property
    def ttl_ms(self) -> int:
        return int(LIVENESS_BEATS * self.heartbeat_s * 1000)

    def resting(self) -> bool:
        if self.rest_until is not None and time.monotonic() >= self.rest_until:
            log.info("rest over: taking jobs again")
            self.rest_until = None
            self.failures = 0
        return self.rest_until is not None

    def apply_rest(self) -> None:
        """Take jobs only when not resting (arq's own switch for that)."""
        if self.arq is not None:
            self.arq.allow_pick_jobs = not self.resting()

    def view(self) -> WorkerView:
        return WorkerView(
            id=self.id,
            host=self.host,
            gpu=self.gpu,
            state=RESTING if self.resting() else READY,
            busy=self.busy,
            jobs_done=self.jobs_done,
            failures=self.failures,
            rescan_epoch=self.rescan_epoch,
            styles=tuple(self.executor.styles()),
        )

    def succeeded(self) -> None:
        self.jobs_done += 1
        self.failures = 0

    def failed(self, error: Message | str, *, worker_fault: bool) -> dict[str, Any]:
        if worker_fault:
            self.failures += 1
            if self.failures >= self.max_failures and self.rest_until is None:
                log.error("%d failures in a row: resting for %.0f s", self.failures, self.rest_s)
                self.rest_until = time.monotonic() + self.rest_s
        return {"ok": False, "error": to_wire(error), "retry": worker_fault, "worker": self.id}


class _ProgressPump:
    """Pushes ``[step, total]`` onto the job's event list in order, off the GPU thread."""

    def __init__(self, redis: ArqRedis, key: str) -> None:
        self._redis = redis
        self._key = key
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        self._task = self._loop.create_task(self._run())

    def push(self, step: int, total: int) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (step, total))

    async def close(self) -> None:
        await asyncio.sleep(0)  # let callbacks posted from the GPU thread land first
        self._queue.put_nowait(None)
        await self._task

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                await awaited(self._redis.rpush(self._key, json_dumps(list(item))))
                await self._redis.expire(self._key, KEEP_S)
            except REDIS_ERRORS:
                log.debug("progress of %s not sent: Redis unreachable", self._key)


async def generate_job(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The arq job: render with the local executor; the JPEG goes to its own key as bytes."""
    state: WorkerState = ctx[STATE]
    redis: ArqRedis = ctx["redis"]
    arq_id: str = ctx["job_id"]
    pump = _ProgressPump(redis, EVENTS_PREFIX + arq_id)
    try:
        async with _received_input(redis, state, payload, arq_id) as spec:
            generated = await state.executor.generate(int(payload["job_id"]), spec, pump.push)
    except GenerationFailed as exc:
        # The request cannot be made (bad style file, out of memory): final everywhere.
        return state.failed(exc.message, worker_fault=False)
    except TurbobotError as exc:  # EngineCrashed, ShuttingDown: retry on another worker
        return state.failed(exc.message, worker_fault=True)
    except Exception as exc:
        log.exception("job %s failed in the worker", arq_id)
        return state.failed(msg("engine.worker_failed", kind=type(exc).__name__), worker_fault=True)
    finally:
        await pump.close()
    await redis.set(image_key(arq_id), generated.jpeg, ex=KEEP_S)
    for k, image in enumerate(generated.images):
        await redis.set(image_key(arq_id, k), image, ex=KEEP_S)
    state.succeeded()
    return {
        "ok": True,
        "images": len(generated.images),
        "width": generated.width,
        "height": generated.height,
        "timings": timings_to_wire(generated.timings),
        "worker": state.id,
    }


@contextlib.asynccontextmanager
async def _received_input(
    redis: ArqRedis, state: WorkerState, payload: dict[str, Any], arq_id: str
) -> AsyncIterator[GenerationSpec]:
    """The job's spec; an init image sent with it is written into this worker's data dir
    (the engine reads it there, like the bot's own) and removed when the job ends."""
    spec = spec_from_wire(payload["spec"])
    key = payload.get("input")
    if key is None:
        yield spec
        return
    data = await redis.get(str(key))
    if data is None:  # Redis lost it (a restart): the bot sends it again with the next try
        raise WorkerLost(msg("engine.input_gone"))
    if len(data) > MAX_INPUT_BYTES:
        raise input_too_large(len(data))
    relative = f"{INPUT_DIR}/{arq_id}"
    path = state.data_dir / relative
    await asyncio.to_thread(_write_input, path, data)
    try:
        yield replace(spec, init_image=relative)
    finally:
        path.unlink(missing_ok=True)


def _write_input(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _on_job_start(ctx: dict[str, Any]) -> None:
    state: WorkerState = ctx[STATE]
    state.busy = ctx["job_id"]
    # Beat at once: the bot tells a live runner from a dead one by this field.
    with contextlib.suppress(*REDIS_ERRORS):
        await beat(ctx["redis"], state)


async def _after_job_end(ctx: dict[str, Any]) -> None:
    state: WorkerState = ctx[STATE]
    redis: ArqRedis = ctx["redis"]
    state.busy = None
    state.apply_rest()
    key = EVENTS_PREFIX + ctx["job_id"]
    with contextlib.suppress(*REDIS_ERRORS):
        await awaited(redis.rpush(key, DONE))  # the result is stored by now: wake the bot
        await redis.expire(key, KEEP_S)
        await beat(redis, state)


async def beat(redis: ArqRedis, state: WorkerState) -> None:
    """Write this worker's heartbeat; it expires unless renewed."""
    await redis.set(WORKER_PREFIX + state.id, json_dumps(state.view().to_wire()), px=state.ttl_ms)


async def _heartbeat_loop(redis: ArqRedis, state: WorkerState, stop: asyncio.Event) -> None:
    outage = False
    while not stop.is_set():
        try:
            await _rescan_if_asked(redis, state)
            state.apply_rest()
            await beat(redis, state)
        except REDIS_ERRORS as err:
            if not outage:
                log.warning("heartbeat: Redis unreachable (%s)", type(err).__name__)
            outage = True
        else:
            outage = False
        await _wait(stop, state.heartbeat_s)


async def _rescan_if_asked(redis: ArqRedis, state: WorkerState) -> None:
    raw = await redis.get(RESCAN_KEY)
    epoch = int(raw) if raw is not None else 0
    if epoch > state.rescan_epoch:
        await state.executor.rescan_styles()
        state.rescan_epoch = epoch


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


class _NoJobArguments(logging.Filter):
    """arq logs each job's arguments at INFO ("→ id:generate(payload={...prompt...})"): the
    user's prompt. The line stays, with the job's id; the arguments go."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 4 and "→" in str(record.msg):
            record.args = (*record.args[:2], "…", record.args[3])
        return True


_ARQ_LOG = logging.getLogger("arq.worker")


def _hide_job_arguments() -> None:
    if not any(isinstance(f, _NoJobArguments) for f in _ARQ_LOG.filters):
        _ARQ_LOG.addFilter(_NoJobArguments())


def _arq_worker(settings: PoolSettings, state: WorkerState, url: str) -> Worker:
    _hide_job_arguments()
    return Worker(
        [func(generate_job, name=JOB_FUNCTION, max_tries=1)],
        queue_name=QUEUE,
        redis_settings=redis_settings(url),
        job_serializer=json_dumps,
        job_deserializer=json_loads,
        max_jobs=1,
        max_tries=1,  # retries belong to the bot, whose attempt cap counts every try
        job_timeout=settings.worker_job_timeout_s,
        keep_result=KEEP_S,
        poll_delay=settings.worker_poll_s,
        allow_abort_jobs=True,  # the bot aborts a job it has given up on
        handle_signals=False,  # our own stop event drains the job in flight first
        on_job_start=_on_job_start,
        after_job_end=_after_job_end,
        ctx={STATE: state},
        log_results=False,
    )


async def _run_arq(worker: Worker, state: WorkerState, stop: asyncio.Event) -> None:
    """Run ``worker`` until ``stop`` (finishing the job in flight) or until Redis fails."""
    state.arq = worker
    state.apply_rest()
    main = asyncio.get_running_loop().create_task(worker.async_run())
    stopper = asyncio.get_running_loop().create_task(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        worker.allow_pick_jobs = False
        # The job in flight finishes either way: on a Redis blip its result may still land.
        async with asyncio.timeout(_DRAIN_S):
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        if main.done():
            main.result()  # re-raise what ended arq's loop (a lost Redis connection)
    finally:
        state.arq = None
        for task in (main, stopper):
            task.cancel()
        await asyncio.gather(main, stopper, return_exceptions=True)
        await _close_arq(worker)


async def _close_arq(worker: Worker) -> None:
    # What arq's Worker.close() does, minus its call of a redis method deprecated in redis 5.
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    pool: ArqRedis | None = worker._pool
    if pool is not None:
        with contextlib.suppress(*REDIS_ERRORS):
            await pool.delete(worker.health_check_key)
        await pool.aclose()


async def serve_worker(
    settings: PoolSettings, executor: Executor, *, worker_id: str, gpu: str, stop: asyncio.Event
) -> None:
    """Take jobs from Redis with ``executor`` until ``stop`` is set."""
    url = settings.redis_url.get_secret_value()
    state = WorkerState(worker_id, gpu, executor, settings)
    redis = await create_pool(redis_settings(url), default_queue_name=QUEUE)
    beats = asyncio.get_running_loop().create_task(_heartbeat_loop(redis, state, stop))
    log.info("worker %s (%s) ready", worker_id, gpu)
    try:
        while not stop.is_set():
            try:
                await _run_arq(_arq_worker(settings, state, url), state, stop)
            except REDIS_ERRORS as err:
                log.warning("lost Redis (%s); reconnecting, engine stays loaded", err)
                await _wait(stop, 1.0)
    finally:
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await redis.delete(WORKER_PREFIX + worker_id)  # leave the pool at once
        await redis.aclose()


def default_worker_id() -> str:
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    suffix = f"-gpu{gpus.replace(',', '+')}" if gpus else ""
    return f"{socket.gethostname()}-{os.getpid()}{suffix}"


async def serve(
    settings: PoolSettings,
    opened: AbstractAsyncContextManager[Executor],
    *,
    gpu: str,
    name: str | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Open the executor once (``opened``: the engine, injected by :mod:`bot.entry.worker`) and
    serve jobs until SIGINT/SIGTERM; returns the exit code."""
    from bot.lifecycle import install_stop_signals

    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    async with opened as executor:
        await serve_worker(
            settings, executor, worker_id=name or default_worker_id(), gpu=gpu, stop=stop
        )
    log.info("worker stopped cleanly")
    return 0
