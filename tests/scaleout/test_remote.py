"""RemoteExecutor and the worker loop in one process, against a real Redis: the worker's
engine is the core's FakeExecutor, so these run in a blink and need no torch."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.domain import Generated, GenerationSpec, JobKind, StyleInfo, Timings
from bot.entry import worker as entry_worker
from bot.errors import GenerationFailed
from bot.ports import ProgressCallback
from bot.slices import pool_settings as pool_slice
from bot.testing.executor import DEFAULT_STYLES, FakeExecutor
from engine.pool.remote import RemoteExecutor, open_remote_executor
from engine.pool.wire import (
    QUEUE,
    WorkerLost,
    WorkerView,
    json_dumps,
    json_loads,
    spec_from_wire,
    spec_to_wire,
    timings_from_wire,
    timings_to_wire,
)
from engine.pool.worker import serve_worker
from tests.scaleout.conftest import RedisServer, pool_settings

SPEC = GenerationSpec("a fox", None, seed=5, steps=4, width=1024, height=1024)


@pytest.fixture
def settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    redis_server.client().flushall()  # each test starts with an empty pool
    return pool_settings(tmp_path, redis_server.url, TURBOBOT_WORKER_MAX_FAILURES=2)


@asynccontextmanager
async def worker(settings: Settings, name: str, engine: FakeExecutor) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_worker(settings, engine, worker_id=name, gpu="test-gpu", stop=stop)
    )
    try:
        yield
    finally:
        stop.set()
        await task


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(10):
        # Redis state cannot be awaited as an event: poll it (no timing is asserted).
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def ready_count(executor: RemoteExecutor, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await executor.refresh()
        return executor.stats().ready_workers == n

    return check


def no_progress(step: int, total: int) -> None:
    """Progress is not under test here."""


async def test_capacity_is_the_ready_workers_but_never_below_one(settings: Settings) -> None:
    async with open_remote_executor(settings) as executor:
        assert executor.capacity == 1
        assert executor.styles() == []
        async with (
            worker(settings, "a", FakeExecutor()),
            worker(settings, "b", FakeExecutor(style_list=[StyleInfo("oil", "Oil", "", "", 1)])),
        ):
            await until(ready_count(executor, 2))
            assert executor.capacity == 2
            names = [s.name for s in executor.styles()]
            assert names == sorted({"oil", *(s.name for s in DEFAULT_STYLES)})
            health = executor.stats().as_dict()
            assert [(w["id"], w["gpu"], w["state"]) for w in health["workers"]] == [
                ("a", "test-gpu", "ready"),
                ("b", "test-gpu", "ready"),
            ]
        # A stopping worker removes itself at once instead of waiting for its key to expire.
        await until(ready_count(executor, 0))
        assert executor.capacity == 1


async def test_image_timings_and_progress_come_back_in_order(settings: Settings) -> None:
    engine = FakeExecutor()
    steps: list[tuple[int, int]] = []
    async with open_remote_executor(settings) as executor, worker(settings, "a", engine):
        result = await executor.generate(11, SPEC, lambda s, t: steps.append((s, t)))
        await executor.refresh()
        (view,) = executor.stats().workers
    assert result.jpeg.startswith(b"\xff\xd8")
    assert (result.width, result.height) == (64, 64)
    assert result.timings == Timings(denoise_ms=1.0)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert engine.calls == [(11, SPEC)]
    assert view.jobs_done == 1


async def test_a_job_waits_for_a_worker_to_appear(
    settings: Settings, redis_server: RedisServer
) -> None:
    engine = FakeExecutor()
    client = redis_server.client()

    async def queued() -> bool:
        return bool(await asyncio.to_thread(client.zcard, QUEUE))

    async with open_remote_executor(settings) as executor:
        pending = asyncio.create_task(executor.generate(1, SPEC, no_progress))
        await until(queued)  # in Redis, and no worker to take it
        assert not pending.done()
        async with worker(settings, "late", engine):
            async with asyncio.timeout(10):
                result = await pending
    client.close()
    assert result.jpeg
    assert engine.calls == [(1, SPEC)]


async def test_an_engine_refusal_is_final_but_an_engine_crash_is_retried(
    settings: Settings,
) -> None:
    engine = FakeExecutor(fail_prompts={"refused"}, crash_prompts={"crash"})
    refused = GenerationSpec("refused", None, 1, 4, 1024, 1024)
    crash = GenerationSpec("crash", None, 1, 4, 1024, 1024)
    async with open_remote_executor(settings) as executor, worker(settings, "a", engine):
        with pytest.raises(GenerationFailed, match="fake GPU refused"):
            await executor.generate(1, refused, no_progress)
        # Not GenerationFailed: the core retries this on another worker, up to its cap.
        with pytest.raises(WorkerLost, match="fake GPU worker died"):
            await executor.generate(2, crash, no_progress)


async def test_a_worker_that_keeps_failing_rests_and_others_take_the_jobs(
    settings: Settings,
) -> None:
    broken = FakeExecutor(crash_prompts={"crash"})
    healthy = FakeExecutor()
    crash = GenerationSpec("crash", None, 1, 4, 1024, 1024)
    async with open_remote_executor(settings) as executor, worker(settings, "broken", broken):
        for job_id in (1, 2):  # TURBOBOT_WORKER_MAX_FAILURES=2
            with pytest.raises(WorkerLost):
                await executor.generate(job_id, crash, no_progress)
        await until(ready_count(executor, 0))
        (view,) = executor.stats().workers
        assert (view.state, view.failures) == ("resting", 2)
        async with worker(settings, "healthy", healthy):
            await until(ready_count(executor, 1))
            assert executor.capacity == 1
            await executor.generate(3, SPEC, no_progress)
    assert [job_id for job_id, _ in broken.calls] == [1, 2]
    assert [job_id for job_id, _ in healthy.calls] == [3]


async def test_rescan_reaches_every_worker(settings: Settings) -> None:
    engine = FakeExecutor(style_list=[])
    async with open_remote_executor(settings) as executor, worker(settings, "a", engine):
        await until(ready_count(executor, 1))
        assert executor.styles() == []
        engine.style_list.append(StyleInfo("ink", "Ink", "", "", 1.0))
        scan = await executor.rescan_styles()
    assert [s.name for s in scan.styles] == ["ink"]


def test_the_wire_is_json_and_round_trips() -> None:
    timings = Timings(1.0, 2.0, 3.0, 4.0, (0.5, 1.5))
    view = WorkerView("w", "host", "RTX 4090", busy="turbobot-1-1", styles=DEFAULT_STYLES)
    wire: dict[str, Any] = json_loads(json_dumps(view.to_wire()))
    assert WorkerView.from_wire(wire) == view
    assert spec_from_wire(json_loads(json_dumps(spec_to_wire(SPEC)))) == SPEC
    vary = replace(SPEC, n=4, kind=JobKind.VARY, init_image="images/1.jpg", strength=0.35)
    back = spec_from_wire(json_loads(json_dumps(spec_to_wire(vary))))
    assert back == vary
    assert back.kind is JobKind.VARY
    assert timings_from_wire(json_loads(json_dumps(timings_to_wire(timings)))) == timings


class GridFake(FakeExecutor):
    """Answers with a grid and one JPEG per image, as the local engine does for n > 1."""

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        one = await super().generate(job_id, spec, on_progress)
        images = tuple(b"image %d" % k for k in range(spec.n)) if spec.n > 1 else ()
        return replace(one, images=images)


async def test_every_image_of_a_grid_comes_back_from_the_worker(settings: Settings) -> None:
    async with open_remote_executor(settings) as executor, worker(settings, "a", GridFake()):
        four = await executor.generate(12, replace(SPEC, n=4), no_progress)
        one = await executor.generate(13, SPEC, no_progress)
    assert four.images == (b"image 0", b"image 1", b"image 2", b"image 3")
    assert four.jpeg.startswith(b"\xff\xd8")
    assert one.images == ()


async def test_the_worker_logs_job_ids_not_prompts(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """arq logged each job's arguments, with the prompt, at INFO (issue 15, item 15)."""
    secret = "my very private prompt words"
    spec = GenerationSpec(secret, None, seed=5, steps=4, width=1024, height=1024)
    with caplog.at_level(logging.DEBUG):
        async with (
            open_remote_executor(settings) as executor,
            worker(settings, "a", FakeExecutor()),
        ):
            await executor.generate(12, spec, no_progress)
    assert "generate" in caplog.text  # arq's line about the job is still there
    assert secret[:8] not in caplog.text


async def test_the_benchmark_worker_serves_the_fake_with_its_latency_and_every_step(
    settings: Settings,
) -> None:
    """``turbobot worker --fake-latency-ms``: the entry point wires the one fake executor into
    the pool worker (no model, no torch), reporting each step as a GPU would."""
    steps: list[tuple[int, int]] = []
    stop = asyncio.Event()
    served = asyncio.create_task(
        entry_worker.serve(
            pool_slice(settings), settings.engine(), name="f", fake_latency_ms=40, stop=stop
        )
    )
    try:
        async with open_remote_executor(settings) as executor:
            result = await executor.generate(21, SPEC, lambda s, t: steps.append((s, t)))
            await executor.refresh()
            (view,) = executor.stats().workers
    finally:
        stop.set()
        assert await served == 0
    assert (view.id, view.gpu, view.styles) == ("f", "fake", ())
    assert result.jpeg.startswith(b"\xff\xd8")
    assert result.timings == Timings(denoise_ms=40.0)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_the_pool_imports_no_torch() -> None:
    """The static contract (import-linter) checked at run time: both sides of the pool load
    without torch, diffusers, transformers or peft."""
    code = (
        "import sys, engine.pool.remote, engine.pool.worker; "
        "print(sorted({'torch', 'diffusers', 'transformers', 'peft'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
