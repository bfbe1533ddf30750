"""Regression tests for the adversarial run's findings in the core (issue 15).

One test (or a few) per numbered item; the bad-input corpus has its own table-driven test
(test_corpus.py).
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

import pytest

import bot.store.jobs
from adapters.console import ConsoleAdapter
from bot.community_calls import MAX_OFFSET
from bot.domain import Job, Platform, Requester, SettingsChange
from bot.errors import RateLimited, StorageError, UnknownStyle
from bot.metrics import Metrics, serve_metrics
from bot.service import DB_NAME, open_core
from bot.store import connect, migrations
from bot.testing.executor import FakeExecutor
from bot.validation import clamp_page
from tests.core.conftest import OpenCore, make_settings, request, user
from tests.core.test_lifecycle import free_port
from tests.fakes import FakeClock, RecordingNotifier

SERVER = "g1"
# A hang guard, not a speed target: on the old code these submits never returned.
HANG_S = 30.0


# --- item 2: lone surrogates; the group commit fails its waiters on any error ----------------


async def test_lone_surrogates_are_sanitised_where_text_enters_the_core(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    """ "\\ud83d" in a prompt or a name made the insert raise and every submit hang."""
    notifier = RecordingNotifier(platform=Platform.DISCORD)
    ada = Requester(Platform.DISCORD, "ada", "Ada \ud83d", "chan", server_id=SERVER)
    async with open_test_core(notifiers=(notifier,)) as core:
        async with asyncio.timeout(HANG_S):
            ticket = await core.submit(
                request(ada, "a fox \ud83d", cfg=4.0, negative_prompt="blurry \udc00")
            )
            await core.wait_until_idle(ada.user_key)
            with pytest.raises(UnknownStyle):  # a clear answer, not a crash
                await core.set_default_style(ada, "ink\ud800")
    assert ticket.job.spec.prompt == "a fox \ufffd"
    assert ticket.job.spec.negative_prompt == "blurry \ufffd"
    assert ticket.job.requester.display_name == "Ada \ufffd"
    assert [job.id for job in notifier.delivered_jobs] == [ticket.job.id]
    assert executor.calls[0][1].prompt == "a fox \ufffd"


async def test_a_failing_group_commit_resolves_every_waiter(
    open_test_core: OpenCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception in the batch (not only a StorageError) fails its submits, frees their
    pending slots and gives their rate tokens back; the next batch commits normally."""
    real_row = bot.store.jobs.job_row

    def job_row(job: Job) -> tuple[object, ...]:
        if job.spec.prompt == "boom":
            raise ValueError("an error nobody expected")
        return real_row(job)

    monkeypatch.setattr(bot.store.jobs, "job_row", job_row)
    people = [user(f"u{i}", server=SERVER) for i in range(5)]
    async with open_test_core(TURBOBOT_RATE_BURST=1, TURBOBOT_MAX_PENDING_PER_USER=1) as core:
        async with asyncio.timeout(HANG_S):
            # Submitted together: whoever shares the bad row's group commit fails with it.
            results = await asyncio.gather(
                *(
                    core.submit(request(p, "boom" if i == 0 else "fine"))
                    for i, p in enumerate(people)
                ),
                return_exceptions=True,
            )
            assert isinstance(results[0], StorageError)
            assert "could not queue the job" in str(results[0])
            failed = [
                p for p, r in zip(people, results, strict=True) if isinstance(r, StorageError)
            ]
            assert all(isinstance(r, StorageError) or r.job.id for r in results), results
            for p in people:
                await core.wait_until_idle(p.user_key)
            # Slot and token were given back: with a cap of 1 and a burst of 1, this works.
            again = [await core.submit(request(p, "fine again")) for p in failed]
            for p in people:
                await core.wait_until_idle(p.user_key)
        assert len(again) == len(failed) >= 1
        assert core.cache_sizes()["held_users"] == 0


# --- item 5: /forget and opt-out delete the bot's posts --------------------------------------


async def test_forget_and_opt_out_delete_the_bots_posts(open_test_core: OpenCore) -> None:
    notifier = RecordingNotifier(platform=Platform.DISCORD)
    ada, zed = user("ada", server=SERVER), user("zed", server=SERVER)
    root = user("root", server=SERVER)
    async with open_test_core(notifiers=(notifier,)) as core:
        await core.update_server_settings(
            root, SettingsChange(showcase_channel_id="showcase"), is_admin=True
        )
        posted = {}
        for who in (ada, zed):
            ticket = await core.submit(request(who, f"{who.user_id}'s comet"))
            await core.wait_until_idle(who.user_key)
            share = await core.share(who, ticket.job.id)
            await core.record_share(share.share_id, f"post-{who.user_id}")
            posted[who.user_id] = ticket.job.id

        await core.set_privacy(ada, share_opt_out=True)
        await core.drain(timeout_s=HANG_S)  # the deletions run beside the answer
        after_opt_out = list(notifier.deleted)
        await core.forget(zed)
        await core.drain(timeout_s=HANG_S)
    assert after_opt_out == [("showcase", "post-ada")]
    assert notifier.deleted[1:] == [
        ("showcase", "post-zed"),
        ("chan-zed", f"m{posted['zed']}"),  # the result message itself
    ]


# --- item 11: a 30-digit id does not kill the console -----------------------------------------


async def test_console_survives_a_30_digit_cancel(open_test_core: OpenCore, tmp_path: Path) -> None:
    out = io.StringIO()
    ended = asyncio.Event()
    async with open_test_core(notifiers=()) as core:
        console = ConsoleAdapter(
            core,
            on_end_of_input=ended.set,
            wait_until_idle=core.wait_until_idle,
            stdin=io.StringIO("/cancel 123456789012345678901234567890\na lighthouse\n"),
            stdout=out,
        )
        core.register(console)
        await console.start()
        async with asyncio.timeout(HANG_S):
            await ended.wait()  # the old console task died here: the end never came
        await console.aclose()
    lines = out.getvalue().splitlines()
    assert "There is no job #123456789012345678901234567890." in lines
    assert any(" done " in line for line in lines)


# --- item 14: per-user state is bounded ---------------------------------------------------------


async def test_per_user_caches_stay_bounded_and_limits_hold_after_eviction(
    tmp_path: Path, clock: FakeClock, executor: FakeExecutor
) -> None:
    settings = make_settings(tmp_path / "data", TURBOBOT_RATE_BURST=1)
    bound = 50
    ada = user("ada", server=SERVER)
    async with open_core(settings, executor, clock, max_cached_users=bound) as core:
        core.register(RecordingNotifier(platform=Platform.DISCORD))
        await core.submit(request(ada))
        await core.wait_until_idle(ada.user_key)
        for i in range(10_000):
            who = user(f"u{i}", server=f"s{i}")
            await core.default_style(who)
            if i % 1000 == 0:
                await core.submit(request(who))  # buckets too, not only default styles
                await core.server_settings(Platform.DISCORD, who.server_id or "")
        sizes = core.cache_sizes()
        # Ada's bucket was evicted long ago; it is read again from the database.
        with pytest.raises(RateLimited):
            await core.submit(request(ada))
        await core.drain(timeout_s=HANG_S)
    assert all(size <= bound for size in sizes.values()), sizes
    assert sizes["default_styles"] == bound


# --- item 15 ------------------------------------------------------------------------------------


async def test_forget_and_a_restart_do_not_reset_the_rate_limit(
    open_test_core: OpenCore,
) -> None:
    ada = user("ada", server=SERVER)
    async with open_test_core(TURBOBOT_RATE_BURST=1) as core:
        await core.submit(request(ada))
        await core.wait_until_idle(ada.user_key)
        await core.forget(ada)
    async with open_test_core(TURBOBOT_RATE_BURST=1) as core:
        with pytest.raises(RateLimited):
            await core.submit(request(ada))


async def test_the_rate_bucket_keeps_no_readable_user_id(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    ada = Requester(Platform.DISCORD, "ada-1234567", "Ada", "chan", server_id=SERVER)
    async with open_test_core() as core:
        await core.submit(request(ada))
        await core.wait_until_idle(ada.user_key)
        await core.forget(ada)
    db = sqlite3.connect(tmp_path / "data" / DB_NAME)
    try:
        keys = [row[0] for row in db.execute("SELECT user_key FROM rate_buckets")]
    finally:
        db.close()
    assert len(keys) == 1
    assert "ada-1234567" not in keys[0]


async def test_a_database_from_a_newer_version_is_refused(
    tmp_path: Path, clock: FakeClock, executor: FakeExecutor
) -> None:
    settings = make_settings(tmp_path / "data")
    async with open_core(settings, executor, clock):
        pass
    newer = len(migrations()) + 1
    db = await connect(tmp_path / "data" / DB_NAME)
    await db.execute(f"PRAGMA user_version = {newer}")
    await db.close()
    with pytest.raises(StorageError, match=f"schema version {newer}.*newer turbobot"):
        async with open_core(settings, executor, clock):
            pass


async def test_huge_and_negative_pages_clamp(open_test_core: OpenCore) -> None:
    ada = user("ada", server=SERVER)
    async with open_test_core() as core:
        await core.submit(request(ada))
        await core.wait_until_idle(ada.user_key)
        assert len(await core.history(ada, offset=-50)) == 1
        assert await core.history(ada, offset=10**30) == []
        assert await core.history(ada, limit=10**30) != []
        assert await core.server_history(f"discord:{SERVER}", offset=10**30) == []
        assert await core.gallery(Platform.DISCORD, SERVER, offset=10**30, limit=-3) == []
        assert await core.gallery(Platform.DISCORD, SERVER, offset=-(10**30)) == []
    assert MAX_OFFSET < 2**63


@pytest.mark.parametrize(
    ("page", "pages", "shown"),
    [(-5, 1, 1), (0, 3, 1), (2, 3, 2), (10**30, 3, 3), (4, 0, 1)],
)
def test_page_numbers_from_buttons_clamp(page: int, pages: int, shown: int) -> None:
    """``tb:sp:-5`` showed "page -4 of 1"."""
    assert clamp_page(page, pages) == shown


async def test_healthz_is_503_while_redis_is_down() -> None:
    import aiohttp

    pool = {"redis_ok": False, "in_flight": 0, "ready_workers": 1, "workers": []}
    async with (
        serve_metrics(Metrics(), "127.0.0.1", free_port(), details=lambda: pool) as port,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            down = resp.status
        pool["redis_ok"] = True
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            up = resp.status
    assert (down, up) == (503, 200)


async def test_pending_counters_forget_users_without_jobs(open_test_core: OpenCore) -> None:
    people = [user(f"u{i}", server=f"s{i}") for i in range(20)]
    async with open_test_core() as core:
        for who in people:
            await core.submit(request(who))
        for who in people:
            await core.wait_until_idle(who.user_key)
        sizes = core.cache_sizes()
    assert (sizes["held_users"], sizes["held_servers"]) == (0, 0)
