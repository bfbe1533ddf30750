"""The pool end to end: real Redis, three ``turbobot worker`` processes on the tiny engine, and
the real core (SQLite under tmp_path) with a recording notifier."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from PIL import Image

from bot.domain import GenerateRequest, Job, Platform, Requester
from bot.service import Core, open_core
from engine.pool.remote import RemoteExecutor, open_remote_executor
from engine.pool.wire import WORKER_PREFIX, json_loads
from tests.fakes import FakeClock, RecordingNotifier
from tests.scaleout.conftest import RedisServer, WorkerProcs, pool_settings

pytestmark = pytest.mark.slow

WHO = Requester(Platform.CONSOLE, "alice", "Alice", "chan-alice")


def ask(prompt: str, steps: int = 2) -> GenerateRequest:
    return GenerateRequest(requester=WHO, prompt=prompt, steps=steps)


@asynccontextmanager
async def pool_core(
    tmp_path: Path, server: RedisServer, notifier: RecordingNotifier, **extra: Any
) -> AsyncIterator[tuple[Core, RemoteExecutor]]:
    settings = pool_settings(tmp_path / "data", server.url, **extra)
    async with (
        open_remote_executor(settings) as executor,
        open_core(settings, executor, FakeClock()) as core,
    ):
        core.register(notifier)
        yield core, executor


async def finish(core: Core) -> None:
    async with asyncio.timeout(60):
        await core.wait_until_idle(WHO.user_key)


@dataclass
class FirstProgress(RecordingNotifier):
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, job: Job, step: int, total: int) -> None:
        await super().progress(job, step, total)
        self.seen.set()


@dataclass
class KillRunner(RecordingNotifier):
    """Kills (SIGKILL) the worker running a target job at its first progress event; with
    ``every_attempt`` it does so again on each retry, like a job that crashes every worker."""

    workers: WorkerProcs | None = None
    targets: set[int] = field(default_factory=set)
    every_attempt: bool = False
    killed: dict[str, str] = field(default_factory=dict)  # arq id -> worker name

    async def progress(self, job: Job, step: int, total: int) -> None:
        await super().progress(job, step, total)
        if job.id in self.targets and (self.every_attempt or not self.killed):
            await self._kill_runner(job.id)

    async def _kill_runner(self, job_id: int) -> None:
        assert self.workers is not None
        client = aioredis.Redis(port=self.workers.server.port)
        try:
            for key in await client.keys(WORKER_PREFIX + "*"):
                raw = await client.get(key)
                beat = json_loads(raw) if raw else {}
                busy = beat.get("busy") or ""
                if busy.startswith(f"turbobot-{job_id}-") and busy not in self.killed:
                    self.killed[busy] = beat["id"]
                    await asyncio.to_thread(self.workers.kill, beat["id"])
        finally:
            await client.aclose()


async def test_jobs_spread_over_workers_and_each_is_posted_once(
    tmp_path: Path, redis_server: RedisServer, workers: WorkerProcs
) -> None:
    workers.ensure(3)
    notifier = RecordingNotifier()
    async with pool_core(tmp_path, redis_server, notifier) as (core, executor):
        before = {w.id: w.jobs_done for w in executor.stats().workers}
        assert executor.capacity == 3
        tickets = [await core.submit(ask(f"a fox, take {i}")) for i in range(9)]
        await finish(core)
        await executor.refresh()
        after = {w.id: w.jobs_done for w in executor.stats().workers}
    ids = sorted(t.job.id for t in tickets)
    assert sorted(job_id for job_id, _ in notifier.delivered) == ids
    assert notifier.failures == []
    used = [w for w in after if after[w] > before.get(w, 0)]
    assert len(used) >= 2, f"all jobs went to {used}"
    assert sum(after.values()) - sum(before.values()) == 9
    jpeg = await asyncio.to_thread(Path(notifier.delivered[0][1]).read_bytes)
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        assert image.size == (256, 256)
    assert {(step, total) for _, step, total in notifier.progress_events} >= {(2, 2)}


async def test_worker_killed_mid_job_the_job_completes_elsewhere_and_is_posted_once(
    tmp_path: Path, redis_server: RedisServer, workers: WorkerProcs
) -> None:
    workers.ensure(3)
    notifier = KillRunner(workers=workers)
    async with pool_core(tmp_path, redis_server, notifier) as (core, _):
        doomed = await core.submit(ask("the job whose worker dies", steps=8))
        notifier.targets.add(doomed.job.id)
        others = [await core.submit(ask(f"bystander {i}")) for i in range(2)]
        await finish(core)
        row = await core.job(doomed.job.id)
    assert len(notifier.killed) == 1
    (victim,) = notifier.killed.values()
    assert victim not in workers.alive()
    delivered = [job_id for job_id, _ in notifier.delivered]
    assert sorted(delivered) == sorted([doomed.job.id, *(t.job.id for t in others)])
    assert notifier.failures == []
    assert row.attempts == 2


async def test_redis_restart_loses_no_job(
    tmp_path: Path, redis_server: RedisServer, workers: WorkerProcs
) -> None:
    workers.ensure(2)
    notifier = FirstProgress()
    async with pool_core(tmp_path, redis_server, notifier) as (core, executor):
        tickets = [await core.submit(ask(f"through the outage {i}", steps=8)) for i in range(4)]
        async with asyncio.timeout(30):
            await notifier.seen.wait()  # jobs are running on workers now
        # Without persistence the restarted Redis has forgotten every queued and running job.
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(redis_server.start)
        await finish(core)
        assert executor.stats().redis_ok
    assert sorted(job_id for job_id, _ in notifier.delivered) == sorted(t.job.id for t in tickets)
    assert notifier.failures == []


async def test_a_job_that_kills_every_worker_hits_the_attempt_cap(
    tmp_path: Path, redis_server: RedisServer, workers: WorkerProcs
) -> None:
    workers.ensure(3)
    notifier = KillRunner(workers=workers, every_attempt=True)
    async with pool_core(tmp_path, redis_server, notifier, TURBOBOT_MAX_ATTEMPTS=2) as (core, _):
        poison = await core.submit(ask("the poison prompt", steps=8))
        notifier.targets.add(poison.job.id)
        fine = await core.submit(ask("an ordinary prompt"))
        await finish(core)
    assert len(notifier.killed) == 2
    assert [job_id for job_id, _ in notifier.delivered] == [fine.job.id]
    ((failed_id, reason),) = notifier.failures
    assert failed_id == poison.job.id
    assert "2 attempts" in reason
