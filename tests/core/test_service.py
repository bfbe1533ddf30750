"""The core end to end with a real SQLite file, a fake executor and a fake clock."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.domain import Delivered, DeriveKind, Job, JobState
from bot.errors import (
    NotAllowed,
    NotFound,
    QueueFull,
    RateLimited,
    ShuttingDown,
    StorageError,
    UnknownStyle,
)
from bot.image_files import write_atomic
from bot.service import DB_NAME
from bot.testing.executor import FakeExecutor
from tests.core.conftest import OpenCore, request, user
from tests.fakes import FakeClock, RecordingNotifier, is_jpeg


async def eventually(condition: Callable[[], bool], turns: int = 200_000) -> None:
    """Yield to the loop (and worker threads) until ``condition`` holds; no timed sleeps."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def db_rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "data" / DB_NAME) as db:
        return db.execute(sql).fetchall()


@dataclass
class OrderedNotifier(RecordingNotifier):
    """Records every call in one list, to check the order of progress and delivery."""

    events: list[tuple[str, int, int]] = field(default_factory=list)

    async def progress(self, job: Job, step: int, total: int) -> None:
        self.events.append(("progress", job.id, step))

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.events.append(("deliver", job.id, 0))
        return await super().deliver(job, jpeg_path)


async def test_submit_commits_generates_and_delivers(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    n = RecordingNotifier()
    alice = user("alice")
    async with open_test_core(notifiers=(n,)) as core:
        ticket = await core.submit(request(alice, "  a red fox  ", seed=42))
        # Committed before submit returned: another connection already sees the row.
        assert db_rows(tmp_path, "SELECT id, prompt FROM jobs") == [(ticket.job.id, "a red fox")]
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert ticket.position == 1
    assert job.state is JobState.POSTED
    assert job.posted_message_id == f"m{job.id}"
    assert job.attempts == 1
    assert job.spec.seed == 42
    assert job.image_path is not None
    assert job.image_path.startswith("images/")
    assert job.image_path.endswith(f"/{job.id}.jpg")
    assert n.delivered == [(job.id, str((tmp_path / "data" / job.image_path).resolve()))]
    assert is_jpeg(n.delivered[0][1])


async def test_progress_from_another_thread_arrives_in_order_before_delivery(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.progress_thread = True
    n = OrderedNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,)) as core:
        ticket = await core.submit(request(alice, steps=4))
        await core.wait_until_idle(alice.user_key)
    steps = [step for kind, _, step in n.events if kind == "progress"]
    assert steps, "no progress forwarded"
    assert steps == sorted(steps)
    assert steps[-1] == 4
    assert n.events[-1] == ("deliver", ticket.job.id, 0)


async def test_round_robin_across_users(open_test_core: OpenCore, executor: FakeExecutor) -> None:
    executor.gate = asyncio.Event()
    a, b, c = user("a"), user("b"), user("c")
    async with open_test_core() as core:
        first = await core.submit(request(a, "a0"))
        await eventually(lambda: len(executor.calls) == 1)  # a0 is on the executor
        positions = [
            (await core.submit(request(who, prompt))).position
            for who, prompt in [(a, "a1"), (a, "a2"), (b, "b0"), (c, "c0"), (b, "b1")]
        ]
        # Positions move as other users join: a was served (a0), so b0 and c0 go first.
        assert [(j.spec.prompt, p) for j, p in await core.queue_of(a)] == [
            ("a0", 0),
            ("a1", 3),
            ("a2", 5),
        ]
        assert (await core.queue_of(a))[0][0].id == first.job.id
        executor.gate.set()
        for who in (a, b, c):
            await core.wait_until_idle(who.user_key)
    order = [spec.prompt for _, spec in executor.calls]
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2"]
    assert positions == [1, 2, 1, 2, 4]  # a1 a2 b0 c0 b1, each at the time it was queued


async def test_heavy_user_delays_a_newcomer_by_one_job(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.gate = asyncio.Event()
    heavy, newcomer = user("heavy"), user("newcomer")
    async with open_test_core() as core:
        for i in range(50):
            await core.submit(request(heavy, f"h{i}"))
        ticket = await core.submit(request(newcomer, "n0"))
        assert ticket.position == 1
        executor.gate.set()
        await core.wait_until_idle(newcomer.user_key)
        await core.stop_intake()  # the rest of the heavy queue stays durable
    prompts = [spec.prompt for _, spec in executor.calls]
    assert prompts.index("n0") == 1  # right after h0, which was already running


async def test_eta_is_the_moving_average_of_recent_jobs(
    open_test_core: OpenCore, executor: FakeExecutor, clock: FakeClock
) -> None:
    executor.clock, executor.latency_s = clock, 12.0
    alice, bob = user("alice"), user("bob")
    async with open_test_core() as core:
        assert core.eta_for_position(1) == 0.0  # idle: starts at once
        for _ in range(3):
            await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        executor.gate = asyncio.Event()
        await core.submit(request(alice, "running"))
        await eventually(lambda: executor.calls[-1][1].prompt == "running")
        second = await core.submit(request(bob))
        third = await core.submit(request(alice))
        executor.gate.set()
        await core.wait_until_idle(alice.user_key)
        await core.wait_until_idle(bob.user_key)
    assert second.position == 1
    assert second.eta_s == pytest.approx(12.0)
    assert third.position == 2
    assert third.eta_s == pytest.approx(24.0)


async def test_rate_limit_says_when_and_survives_a_restart(
    open_test_core: OpenCore, clock: FakeClock
) -> None:
    limits = {"TURBOBOT_RATE_PER_MINUTE": 6, "TURBOBOT_RATE_BURST": 2}
    alice, bob = user("alice"), user("bob")
    async with open_test_core(**limits) as core:
        await core.submit(request(alice))
        await core.submit(request(alice))
        with pytest.raises(RateLimited) as refused:
            await core.submit(request(alice))
        await core.submit(request(bob))  # other users are not affected
    assert refused.value.retry_after == pytest.approx(10.0)
    assert "you can queue again in 10 s" in str(refused.value)
    async with open_test_core(**limits) as core:
        with pytest.raises(RateLimited):
            await core.submit(request(alice))
        clock.advance(10.0)
        ticket = await core.submit(request(alice))
    assert ticket.job.id == 4


async def test_caps_per_user_server_and_global(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.gate = asyncio.Event()
    caps = {
        "TURBOBOT_MAX_PENDING_PER_USER": 2,
        "TURBOBOT_MAX_PENDING_PER_SERVER": 3,
        "TURBOBOT_MAX_QUEUE": 4,
    }
    async with open_test_core(**caps) as core:
        a = user("a", server="s1")
        await core.submit(request(a))
        await core.submit(request(a))
        with pytest.raises(QueueFull, match="You already have 2 images waiting"):
            await core.submit(request(a))
        await core.submit(request(user("b", server="s1")))
        with pytest.raises(QueueFull, match="This server already has 3"):
            await core.submit(request(user("c", server="s1")))
        await core.submit(request(user("d", server="s2")))
        with pytest.raises(QueueFull, match="The queue is full"):
            await core.submit(request(user("e", server="s3")))
        executor.gate.set()
        await core.wait_until_idle(a.user_key)
        await core.submit(request(a))  # a finished job frees its place


async def test_cancel_only_own_waiting_jobs(
    open_test_core: OpenCore, executor: FakeExecutor, tmp_path: Path
) -> None:
    executor.gate = asyncio.Event()
    alice, bob = user("alice"), user("bob")
    async with open_test_core() as core:
        running = await core.submit(request(alice, "first"))
        waiting = await core.submit(request(alice, "second"))
        await eventually(lambda: len(executor.calls) == 1)
        with pytest.raises(NotAllowed, match="not yours"):
            await core.cancel(bob, waiting.job.id)
        with pytest.raises(NotAllowed, match="only waiting jobs"):
            await core.cancel(alice, running.job.id)
        with pytest.raises(NotFound):
            await core.cancel(alice, 999)
        cancelled = await core.cancel(alice, waiting.job.id)
        assert await core.queue_of(alice) == [(await core.job(running.job.id), 0)]
        executor.gate.set()
        await core.wait_until_idle(alice.user_key)
    assert cancelled.state is JobState.CANCELLED
    assert [spec.prompt for _, spec in executor.calls] == ["first"]
    states = db_rows(tmp_path, "SELECT state FROM jobs ORDER BY id")
    assert states == [("posted",), ("cancelled",)]


async def test_generation_failure_tells_the_user(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.fail_prompts = {"bad"}
    n = RecordingNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,)) as core:
        ticket = await core.submit(request(alice, "bad"))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert job.state is JobState.FAILED
    assert n.failures == [(job.id, "The fake GPU refused this prompt.")]
    assert n.delivered == []


def files_under(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_no_temporary_image_file_outlives_a_job(
    open_test_core: OpenCore, executor: FakeExecutor, tmp_path: Path
) -> None:
    # The core creates each image's temporary file while the job runs; whatever the outcome,
    # only finished images remain.
    executor.fail_prompts = {"bad"}
    executor.crash_prompts = {"boom"}
    alice = user()
    async with open_test_core(TURBOBOT_MAX_ATTEMPTS=2) as core:
        await core.submit(request(alice, "bad"))
        await core.submit(request(alice, "boom"))
        good = await core.submit(request(alice, "good"))
        await core.wait_until_idle(alice.user_key)
    assert files_under(tmp_path / "data" / "images") == [f"{good.job.id}.jpg"]


async def test_executor_crash_is_retried_up_to_the_attempt_cap(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.crash_prompts = {"boom"}
    n = RecordingNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,), TURBOBOT_MAX_ATTEMPTS=3) as core:
        ticket = await core.submit(request(alice, "boom"))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert len(executor.calls) == 3
    assert job.state is JobState.FAILED
    assert job.attempts == 3
    assert "after 3 attempts" in n.failures[0][1]


async def test_only_an_engine_crash_is_retried_a_refusal_or_a_bug_is_final(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    # The policy is the exception's type (EngineCrashed), not whether it has a __cause__.
    executor.fail_prompts = {"refused"}
    executor.bug_prompts = {"bug"}
    executor.crash_prompts = {"crash"}
    n = RecordingNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,), TURBOBOT_MAX_ATTEMPTS=3) as core:
        ids = [(await core.submit(request(alice, p))).job.id for p in ("refused", "bug", "crash")]
        await core.wait_until_idle(alice.user_key)
        jobs = [await core.job(i) for i in ids]
    assert [j.attempts for j in jobs] == [1, 1, 3]
    assert all(j.state is JobState.FAILED for j in jobs)
    assert "fake GPU refused" in (jobs[0].error or "")
    assert "RuntimeError" in (jobs[1].error or "")


async def test_full_disk_keeps_the_job_and_retries(
    open_test_core: OpenCore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = {"full": True, "writes": 0}

    def writer(path: Path, data: bytes) -> None:
        disk["writes"] += 1
        if disk["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_atomic(path, data)

    n = RecordingNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,), image_writer=writer) as core:
        ticket = await core.submit(request(alice))
        await eventually(lambda: disk["writes"] == 1 and not core.healthy)
        await eventually(lambda: db_rows(tmp_path, "SELECT state FROM jobs") == [("queued",)])
        assert n.failures == []
        assert n.delivered == []
        disk["full"] = False
        core.resume()
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert job.state is JobState.POSTED
    assert job.attempts == 1
    assert len(n.delivered) == 1
    assert "The disk is full" in caplog.text


async def test_locked_database_is_a_clear_error_and_nothing_is_lost(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    alice = user()
    async with open_test_core(busy_timeout_ms=50) as core:
        other = sqlite3.connect(tmp_path / "data" / DB_NAME, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageError, match="database is busy"):
            await core.submit(request(alice, "while locked"))
        other.execute("ROLLBACK")
        other.close()
        ticket = await core.submit(request(alice, "after"))
        await core.wait_until_idle(alice.user_key)
        history = await core.history(alice)
    assert [j.spec.prompt for j in history] == ["after"]
    assert history[0].id == ticket.job.id


async def test_delivery_failure_is_reported_once_and_never_retried(
    open_test_core: OpenCore,
) -> None:
    @dataclass
    class Refusing(RecordingNotifier):
        async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
            self.delivered.append((job.id, jpeg_path))
            raise StorageError("upload rejected")

    n = Refusing()
    alice = user()
    async with open_test_core(notifiers=(n,)) as core:
        ticket = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
    assert len(n.delivered) == 1
    assert job.state is JobState.FAILED
    assert n.failures == [(job.id, "The image was made but could not be posted (upload rejected).")]


async def test_shutdown_keeps_the_queue_for_the_next_start(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.gate = asyncio.Event()
    alice = user()
    async with open_test_core() as core:
        for i in range(3):
            await core.submit(request(alice, f"p{i}"))
        await eventually(lambda: len(executor.calls) == 1)
        await core.stop_intake()
        with pytest.raises(ShuttingDown):
            await core.submit(request(alice))
        executor.gate.set()  # the job in flight finishes during shutdown
    assert [spec.prompt for _, spec in executor.calls] == ["p0"]
    n = RecordingNotifier()
    async with open_test_core(notifiers=(n,)) as core:
        await core.wait_until_idle(alice.user_key)
    assert [spec.prompt for _, spec in executor.calls] == ["p0", "p1", "p2"]
    assert len(n.delivered) == 2


async def test_derive_copies_settings_and_records_the_parent(open_test_core: OpenCore) -> None:
    # Bob derives from Alice's image in the server they share (bot.access).
    alice, bob = user("alice", "srv"), user("bob", "srv")
    async with open_test_core() as core:
        first = await core.submit(request(alice, "a lighthouse", seed=5, steps=3, aspect="16:9"))
        await core.wait_until_idle(alice.user_key)
        reroll = await core.derive(bob, first.job.id, DeriveKind.REROLL)
        same = await core.derive(bob, first.job.id, DeriveKind.RESTYLE, style="ink")
        with pytest.raises(UnknownStyle):
            await core.derive(bob, first.job.id, DeriveKind.RESTYLE, style="nope")
        with pytest.raises(NotFound):
            await core.derive(bob, 999, DeriveKind.REROLL)
        await core.wait_until_idle(bob.user_key)
    for ticket in (reroll, same):
        assert ticket.job.parent_job_id == first.job.id
        assert ticket.job.requester == bob
        assert ticket.job.spec.prompt == "a lighthouse"
        assert (ticket.job.spec.steps, ticket.job.spec.aspect) == (3, "16:9")
    assert reroll.job.spec.seed != 5
    assert reroll.job.spec.style is None
    assert same.job.spec.seed == 5
    assert same.job.spec.style == "ink"


async def test_default_style_is_applied_and_persists(open_test_core: OpenCore) -> None:
    alice = user()
    async with open_test_core() as core:
        with pytest.raises(UnknownStyle, match="Available styles: watercolor, ink"):
            await core.set_default_style(alice, "oil")
        await core.set_default_style(alice, "ink")
    async with open_test_core() as core:
        assert await core.default_style(alice) == "ink"
        styled = await core.submit(request(alice))
        plain = await core.submit(request(alice, style="none"))
        await core.set_default_style(alice, None)
        cleared = await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
    assert (styled.job.spec.style, plain.job.spec.style, cleared.job.spec.style) == (
        "ink",
        None,
        None,
    )


async def test_delete_removes_the_image_and_hides_the_job(open_test_core: OpenCore) -> None:
    alice, bob = user("alice"), user("bob")
    async with open_test_core() as core:
        ticket = await core.submit(request(alice, "secret garden"))
        await core.wait_until_idle(alice.user_key)
        job = await core.job(ticket.job.id)
        path = core.image_file(job)
        assert path is not None
        assert path.exists()
        with pytest.raises(NotAllowed):
            await core.delete(bob, job.id)
        deleted = await core.delete(alice, job.id)
        assert not path.exists()
        assert await core.history(alice) == []
        assert core.image_file(deleted) is None
        with pytest.raises(NotFound):
            await core.delete(bob, job.id, is_admin=True)
        other = await core.submit(request(alice, "public"))
        await core.wait_until_idle(alice.user_key)
        await core.delete(bob, other.job.id, is_admin=True)
    assert deleted.spec.prompt == ""


async def test_cancel_without_a_number_takes_the_newest_waiting_job(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    """``/cancel`` alone: the core picks the job (the adapters used to, each its own way)."""
    executor.gate = asyncio.Event()
    alice, bob = user("alice"), user("bob")
    async with open_test_core() as core:
        running = await core.submit(request(alice, "first"))
        await eventually(lambda: len(executor.calls) == 1)
        with pytest.raises(NotFound, match="no waiting jobs"):
            await core.cancel(alice, None)  # the running job is not waiting
        older = await core.submit(request(alice, "second"))
        newer = await core.submit(request(alice, "third"))
        await core.submit(request(bob, "bob's"))  # newer still, but not alice's
        assert (await core.cancel(alice, None)).id == newer.job.id
        assert (await core.cancel(alice, None)).id == older.job.id
        with pytest.raises(NotFound, match="no waiting jobs"):
            await core.cancel(alice, None)
        assert [job.id for job, _ in await core.queue_of(alice)] == [running.job.id]
        executor.gate.set()
