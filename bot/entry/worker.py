"""``turbobot worker``: the local GPU engine wired into one worker of the pool.

The settings are found and checked as for ``turbobot run`` (the same ``.env`` lookup, one line
per problem, exit 2) before anything loads; platform tokens are not verified, a worker never
talks to Discord or Telegram. The pool itself (:mod:`engine.pool.worker`) imports no torch: the
executor comes from here.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from bot.lifecycle import setup_logging
from bot.ports import Executor
from bot.preflight import Problem, preflight
from bot.slices import EngineSettings, PoolSettings, engine_settings, pool_settings
from bot.testing.executor import FakeExecutor
from engine.pool import worker as pool_worker

log = logging.getLogger(__name__)

REDIS_HELP = "turbobot worker needs the bot's Redis (REDIS_URL=redis://host:6379/0)"


def main(name: str | None = None, fake_latency_ms: float | None = None) -> int:
    """Entry point of ``turbobot worker``; returns the process exit code."""
    checked = asyncio.run(preflight(verify=False))
    problems = checked.errors
    pool = pool_settings(checked.settings)
    if pool is None:
        problems = [*problems, Problem("REDIS_URL", REDIS_HELP)]
    if problems or pool is None:
        for problem in problems:
            print(f"turbobot: {problem}", file=sys.stderr)  # logging is not set up yet
        return 2
    from engine.memory import set_alloc_conf

    set_alloc_conf()  # before anything can start CUDA (expandable segments are read once)
    settings = checked.settings
    url = pool.redis_url.get_secret_value()
    secrets = [s for s in (url, urlsplit(url).password) if s]
    setup_logging(settings.log_level, settings.log_format, secrets)
    engine = engine_settings(settings)
    try:
        return asyncio.run(serve(pool, engine, name=name, fake_latency_ms=fake_latency_ms))
    except KeyboardInterrupt:
        return 130


async def serve(
    pool: PoolSettings,
    engine: EngineSettings,
    *,
    name: str | None = None,
    fake_latency_ms: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve jobs with the local engine (or, for benchmarks, a fixed-latency fake)."""
    opened: AbstractAsyncContextManager[Executor]
    if fake_latency_ms is not None:
        log.warning("FAKE GENERATOR (%.0f ms, no images): for benchmarks only", fake_latency_ms)
        opened, gpu = _fake_executor(fake_latency_ms), "fake"
    else:
        from engine.executors import open_local_executor

        opened, gpu = open_local_executor(engine), gpu_name()
    return await pool_worker.serve(pool, opened, gpu=gpu, name=name, stop=stop)


@asynccontextmanager
async def _fake_executor(latency_ms: float) -> AsyncIterator[Executor]:
    """BENCHMARKS ONLY (``--fake-latency-ms``): sleeps instead of rendering, so a benchmark
    measures the pool's dispatch and not a GPU. Never the default; logged loudly when used."""
    yield FakeExecutor(sleep_s=latency_ms / 1000, style_list=[])


def gpu_name() -> str:
    """The card torch sees first (CUDA_VISIBLE_DEVICES picks it), or ``cpu``.

    Asking starts CUDA, so the allocator settings go into the environment first.
    """
    import torch

    from engine.memory import set_alloc_conf

    set_alloc_conf()
    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(torch.cuda.current_device()))
    return "cpu"
