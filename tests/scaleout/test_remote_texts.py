"""A failure made on a GPU worker keeps its catalogue key across Redis (issue 16), so a Chinese
server reads it in Chinese like a local one; the worker is the core's FakeExecutor (no torch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain import Generated, GenerationSpec
from bot.errors import EngineCrashed, GenerationFailed, TurbobotError
from bot.i18n import msg, t
from bot.ports import ProgressCallback
from bot.testing.executor import FakeExecutor
from engine.pool.remote import open_remote_executor
from engine.pool.wire import WorkerLost
from engine.pool.worker import serve_worker
from tests.scaleout.conftest import RedisServer, pool_settings


class _RefusingEngine(FakeExecutor):
    """Fails "oom" the way the engine does (final), and crashes on "crash" (retryable)."""

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        if spec.prompt == "oom":
            raise GenerationFailed(msg("engine.out_of_memory"))
        raise EngineCrashed(msg("engine.crashed", kind="RuntimeError"))


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    redis_server.client().flushall()
    return pool_settings(tmp_path, redis_server.url)


@asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_worker(settings, _RefusingEngine(), worker_id="w", gpu="test-gpu", stop=stop)
    )
    try:
        yield
    finally:
        stop.set()
        await task


def spec(prompt: str) -> GenerationSpec:
    return GenerationSpec(prompt, None, seed=1, steps=4, width=1024, height=1024)


def no_progress(step: int, total: int) -> None:
    """Progress is not under test here."""


@pytest.mark.parametrize(
    ("prompt", "error", "key"),
    [("oom", GenerationFailed, "engine.out_of_memory"), ("crash", WorkerLost, "engine.crashed")],
)
async def test_a_worker_failure_arrives_with_its_key(
    settings: Settings, prompt: str, error: type[TurbobotError], key: str
) -> None:
    async with open_remote_executor(settings) as executor, worker(settings):
        with pytest.raises(error) as caught:
            await executor.generate(1, spec(prompt), no_progress)
    assert caught.value.key == key
    assert caught.value.render("zh") == t(key, "zh", kind="RuntimeError")
