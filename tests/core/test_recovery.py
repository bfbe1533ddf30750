"""Restart recovery for every unfinished state; posting is at-most-once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import GenerationSpec, Job, JobState
from bot.image_files import image_relative_path, write_atomic
from bot.service import DB_NAME
from bot.store import open_store
from bot.testing.executor import FakeExecutor, tiny_jpeg
from tests.core.conftest import OpenCore, request, user
from tests.fakes import FakeClock, RecordingNotifier

SPEC = GenerationSpec("a quiet harbour", style=None, seed=9, steps=4, width=1024, height=1024)


async def seed_job(tmp_path: Path, clock: FakeClock, state: JobState, attempts: int) -> Job:
    """A job left in ``state`` by a process that died (with its image when it had one)."""
    data = tmp_path / "data"
    image = None
    if state in {JobState.GENERATED, JobState.POSTING}:
        image = str(image_relative_path(1, clock.now()))
        write_atomic(data / image, tiny_jpeg(9))
    async with open_store(data / DB_NAME) as store:
        job = Job(
            id=store.next_job_id(),
            requester=user("alice"),
            spec=SPEC,
            state=state,
            created_at=clock.now(),
            attempts=attempts,
            image_path=image,
        )
        await store.add_job(job)
    return job


@pytest.mark.parametrize(
    ("state", "attempts", "generated_again", "delivered", "final", "final_attempts"),
    [
        (JobState.QUEUED, 0, True, True, JobState.POSTED, 1),
        (JobState.RUNNING, 1, True, True, JobState.POSTED, 2),
        (JobState.RUNNING, 3, False, False, JobState.FAILED, 3),
        (JobState.GENERATED, 1, False, True, JobState.POSTED, 1),
        (JobState.POSTING, 1, False, False, JobState.FAILED, 1),
    ],
)
async def test_recovery(  # noqa: PLR0917 (one argument per parametrized column)
    open_test_core: OpenCore,
    executor: FakeExecutor,
    tmp_path: Path,
    clock: FakeClock,
    state: JobState,
    attempts: int,
    generated_again: bool,
    delivered: bool,
    final: JobState,
    final_attempts: int,
) -> None:
    job = await seed_job(tmp_path, clock, state, attempts)
    n = RecordingNotifier()
    async with open_test_core(notifiers=(n,), TURBOBOT_MAX_ATTEMPTS=3) as core:
        await core.wait_until_idle(job.requester.user_key)
        after = await core.job(job.id)
    assert bool(executor.calls) is generated_again
    assert [job_id for job_id, _ in n.delivered] == ([job.id] if delivered else [])
    assert after.state is final
    assert after.attempts == final_attempts
    if not delivered:
        assert len(n.failures) == 1
        assert n.failures[0][0] == job.id
    if state is JobState.POSTING:
        assert "not sent twice" in n.failures[0][1]
        assert "/history" in n.failures[0][1]
    if state is JobState.RUNNING and final is JobState.FAILED:
        assert "stopped 3 times" in n.failures[0][1]


async def test_results_wait_for_their_platform_adapter(
    open_test_core: OpenCore, tmp_path: Path, clock: FakeClock
) -> None:
    """A result recovered before the adapter registers is delivered once it does."""
    job = await seed_job(tmp_path, clock, JobState.GENERATED, 1)
    n = RecordingNotifier()
    async with open_test_core(notifiers=()) as core:
        assert (await core.job(job.id)).state is JobState.GENERATED
        core.register(n)
        await core.wait_until_idle(job.requester.user_key)
    assert [job_id for job_id, _ in n.delivered] == [job.id]


async def test_a_posted_job_is_never_delivered_again(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    n = RecordingNotifier()
    alice = user()
    async with open_test_core(notifiers=(n,)) as core:
        await core.submit(request(alice))
        await core.wait_until_idle(alice.user_key)
    for _ in range(2):
        async with open_test_core(notifiers=(n,)) as core:
            await core.wait_until_idle(alice.user_key)
    assert len(n.delivered) == 1
