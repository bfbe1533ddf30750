"""Seams between the core's parts (issue 17): each test here was written against a mutant that
the older tests let through (see tests/mutants.toml)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.domain import Delivered, Job, JobState, Platform, Requester
from bot.errors import BadPrompt
from bot.moderation import BLOCKED_MESSAGE
from bot.service import DB_NAME
from bot.store import open_store
from bot.testing.executor import FakeExecutor
from tests.core.conftest import OpenCore, request, user
from tests.core.test_recovery import seed_job
from tests.fakes import FakeClock, RecordingNotifier


def stored_state(data_dir: Path, job_id: int) -> str:
    """The job's state as committed to the database (a reader of its own, like a crash would
    leave it), not as the core holds it in memory."""
    with sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True) as db:
        (state,) = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return str(state)


@dataclass
class StateReadingNotifier(RecordingNotifier):
    """Records the committed state of each job at the moment it is being sent."""

    data_dir: Path = Path()
    seen: list[str] = field(default_factory=list)

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.seen.append(stored_state(self.data_dir, job.id))
        return await super().deliver(job, jpeg_path)


# ----- at-most-once posting -----
async def test_the_row_says_posting_while_the_image_is_sent(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    notifier = StateReadingNotifier(data_dir=tmp_path / "data")
    async with open_test_core(notifiers=(notifier,)) as core:
        ticket = await core.submit(request(user("alice")))
        await core.wait_until_idle(ticket.job.requester.user_key)
    assert notifier.seen == [JobState.POSTING]
    assert stored_state(tmp_path / "data", ticket.job.id) == JobState.POSTED


async def test_a_recovered_delivery_is_marked_posting_before_it_is_sent(
    open_test_core: OpenCore, tmp_path: Path, clock: FakeClock, executor: FakeExecutor
) -> None:
    job = await seed_job(tmp_path, clock, JobState.GENERATED, attempts=1)
    notifier = StateReadingNotifier(data_dir=tmp_path / "data")
    async with open_test_core(notifiers=(notifier,)) as core:
        await core.wait_until_idle(job.requester.user_key)
    assert notifier.seen == [JobState.POSTING]
    assert executor.calls == []  # delivered, not made again
    assert stored_state(tmp_path / "data", job.id) == JobState.POSTED


async def test_a_generated_job_whose_file_is_gone_is_made_again(
    open_test_core: OpenCore, tmp_path: Path, clock: FakeClock, executor: FakeExecutor
) -> None:
    job = await seed_job(tmp_path, clock, JobState.GENERATED, attempts=1)
    assert job.image_path is not None
    (tmp_path / "data" / job.image_path).unlink()  # the crash took the file with it
    notifier = RecordingNotifier()
    async with open_test_core(notifiers=(notifier,)) as core:
        await core.wait_until_idle(job.requester.user_key)
        done = await core.job(job.id)
    assert [call[0] for call in executor.calls] == [job.id]
    assert [d[0] for d in notifier.delivered] == [job.id]
    assert notifier.failures == []
    assert done.state is JobState.POSTED
    assert core.image_file(done) is not None


# ----- durability settings -----
async def test_the_database_runs_with_synchronous_full_and_wal(tmp_path: Path) -> None:
    async with open_store(tmp_path / DB_NAME) as store:
        [(synchronous,)] = [tuple(r) for r in await store.query("PRAGMA synchronous")]
        [(journal,)] = [tuple(r) for r in await store.query("PRAGMA journal_mode")]
    assert synchronous == 2  # FULL (NORMAL is 1: a power cut may undo a committed job)
    assert journal == "wal"


# ----- prompts: the limit, bidi controls, Hangul fillers -----
async def test_prompt_of_exactly_the_limit_is_queued_and_one_more_is_refused(
    open_test_core: OpenCore,
) -> None:
    from bot.domain import MAX_PROMPT_CHARS

    async with open_test_core() as core:
        ticket = await core.submit(request(user("alice"), "x" * MAX_PROMPT_CHARS))
        assert ticket.job.spec.prompt == "x" * MAX_PROMPT_CHARS
        with pytest.raises(BadPrompt, match=f"the limit is {MAX_PROMPT_CHARS}"):
            await core.submit(request(user("alice"), "x" * (MAX_PROMPT_CHARS + 1)))


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize("control", list(BIDI_CONTROLS), ids=lambda c: f"U+{ord(c):04X}")
async def test_bidi_controls_are_removed_from_prompts(
    open_test_core: OpenCore, control: str
) -> None:
    async with open_test_core() as core:
        ticket = await core.submit(request(user("alice"), f"{control}a fox{control}"))
        assert ticket.job.spec.prompt == "a fox"
        with pytest.raises(BadPrompt):
            await core.submit(request(user("alice"), control * 3))


@pytest.mark.parametrize("filler", ["\u3164", "\u115f", "\u1160"], ids=["3164", "115F", "1160"])
async def test_a_prompt_of_hangul_fillers_is_empty(open_test_core: OpenCore, filler: str) -> None:
    async with open_test_core() as core:
        with pytest.raises(BadPrompt, match="empty"):
            await core.submit(request(user("alice"), f" {filler * 3} "))


# ----- the operator's word filter holds outside servers too -----
async def test_operator_banned_words_apply_in_private_chats(open_test_core: OpenCore) -> None:
    private = Requester(Platform.TELEGRAM, "42", "Ada", "42")  # no server: a private chat
    async with open_test_core(TURBOBOT_BANNED_WORDS="grumbleweed") as core:
        with pytest.raises(BadPrompt, match=str(BLOCKED_MESSAGE)):
            await core.submit(request(private, "a Grumbleweed field"))
        with pytest.raises(BadPrompt, match=str(BLOCKED_MESSAGE)):
            await core.submit(request(user("alice", server="guild-1"), "grumbleweed"))


# ----- the test harness itself: a failing test fails at once -----
async def test_a_failing_assertion_inside_open_test_core_is_not_held_by_the_drain(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.gate = asyncio.Event()  # the job stays on the "GPU" until the gate opens

    async def failing_test() -> None:
        async with open_test_core() as core:
            ticket = await core.submit(request(user("alice")))
            while not executor.calls:  # noqa: ASYNC110 (the fake executor has no event for it)
                await asyncio.sleep(0)
            assert (await core.job(ticket.job.id)).state is JobState.POSTED, "the real message"

    # Without fail-fast the exit would wait out the 120 s drain for the held job.
    async with asyncio.timeout(30):
        with pytest.raises(AssertionError, match="the real message"):
            await failing_test()
    assert not executor.gate.is_set()
