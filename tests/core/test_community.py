"""Community (issue 6) through the real core: settings, sharing, gallery, remix, privacy, blocks.

Real SQLite under tmp_path, the fake executor and a fake clock; users are on Discord server g1.
"""

from __future__ import annotations

import asyncio
import gc
import random
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.community import BLOCKED, NO_SHOWCASE
from bot.domain import (
    DeriveKind,
    GenerationSpec,
    Job,
    JobState,
    Language,
    Platform,
    Requester,
    ServerSettings,
    SettingsChange,
    StyleInfo,
)
from bot.errors import (
    BadPrompt,
    BadRequest,
    NotAllowed,
    NotFound,
    QueueFull,
    RateLimited,
    UnknownStyle,
)
from bot.i18n import msg
from bot.moderation import BLOCKED_MESSAGE
from bot.ports import BotApi
from bot.service import DB_NAME, Core, open_core
from bot.store import connect, migrate, migrations, open_store
from bot.testing.executor import FakeExecutor
from tests.core.conftest import OpenCore, make_settings, request, user
from tests.fakes import FakeClock

SERVER = "g1"
DAY = 86400.0


def wide(text: str) -> str:
    """``text`` in fullwidth letters (written this way so the source shows no look-alikes)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def admin() -> Requester:
    return user("root", server=SERVER)


def member(name: str = "alice", server: str = SERVER) -> Requester:
    return user(name, server=server)


async def posted(core: Core, who: Requester, prompt: str = "a red fox", **kw: object) -> int:
    ticket = await core.submit(request(who, prompt, **kw))
    await core.wait_until_idle(who.user_key)
    job = await core.job(ticket.job.id)
    assert job.state is JobState.POSTED
    return job.id


async def with_showcase(core: Core) -> None:
    await core.update_server_settings(
        admin(), SettingsChange(showcase_channel_id="showcase"), is_admin=True
    )


def test_core_implements_the_community_contract(tmp_path: Path) -> None:
    api: type[BotApi] = Core  # mypy checks Core against the protocol
    assert api is Core


# --- settings -------------------------------------------------------------------------------


async def test_settings_round_trip_survive_a_restart(open_test_core: OpenCore) -> None:
    change = SettingsChange(
        default_style="Ink",
        allowed_styles=("ink", "watercolor"),
        rate_per_minute=2.0,
        rate_burst=2,
        max_pending_per_user=3,
        showcase_channel_id="c-show",
        banned_words=("Gore*", "血腥", "gore*"),
        allow_external_share=False,
        language=Language.ZH,
    )
    async with open_test_core() as core:
        fresh = await core.server_settings(Platform.DISCORD, SERVER)
        shown = await core.update_server_settings(admin(), change, is_admin=True)
    async with open_test_core() as core:
        stored = await core.server_settings(Platform.DISCORD, SERVER)
        cleared = await core.update_server_settings(
            admin(), SettingsChange(clear=frozenset({"banned_words", "language"})), is_admin=True
        )
    assert fresh == ServerSettings(Platform.DISCORD, SERVER)
    assert shown == stored
    assert stored.default_style == "ink"
    assert stored.allowed_styles == ("ink", "watercolor")
    assert (stored.rate_per_minute, stored.rate_burst, stored.max_pending_per_user) == (2.0, 2, 3)
    assert stored.showcase_channel_id == "c-show"
    assert stored.banned_words == ("gore*", "血腥")  # folded and de-duplicated
    assert stored.allow_external_share is False
    assert stored.language is Language.ZH
    assert cleared.banned_words == ()
    assert cleared.language is None  # not chosen: each user reads their own language
    assert cleared.showcase_channel_id == "c-show"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (SettingsChange(default_style="oil"), UnknownStyle),
        (SettingsChange(allowed_styles=("ink", "oil")), UnknownStyle),
        (SettingsChange(rate_per_minute=0), BadRequest),
        (SettingsChange(rate_per_minute=float("nan")), BadRequest),
        (SettingsChange(rate_burst=-1), BadRequest),
        (SettingsChange(showcase_channel_id="  "), BadRequest),
        (SettingsChange(banned_words=("**",)), BadRequest),
        (SettingsChange(clear=frozenset({"token"})), BadRequest),
        (SettingsChange(rate_burst=2, clear=frozenset({"rate_burst"})), BadRequest),
        (SettingsChange(default_style="ink", allowed_styles=("watercolor",)), BadRequest),
    ],
)
async def test_bad_settings_values_are_refused_and_change_nothing(
    open_test_core: OpenCore, change: SettingsChange, error: type[Exception]
) -> None:
    async with open_test_core() as core:
        with pytest.raises(error):
            await core.update_server_settings(admin(), change, is_admin=True)
        after = await core.server_settings(Platform.DISCORD, SERVER)
    assert after == ServerSettings(Platform.DISCORD, SERVER)


async def test_settings_need_a_server(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        with pytest.raises(BadRequest, match="server or group"):
            await core.update_server_settings(user("root"), SettingsChange(), is_admin=True)


async def test_non_admin_is_refused_for_every_admin_action(open_test_core: OpenCore) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        job_id = await posted(core, alice)
        actions: list[Callable[[], Awaitable[object]]] = [
            lambda: core.update_server_settings(bob, SettingsChange(rate_burst=1), is_admin=False),
            lambda: core.set_blocked(bob, "alice", True, is_admin=False),
            lambda: core.set_blocked(bob, "alice", False, is_admin=False),
            lambda: core.audit_log(bob, is_admin=False),
            lambda: core.delete(bob, job_id, is_admin=False),
        ]
        for action in actions:
            with pytest.raises(NotAllowed):
                await action()
        # Nothing happened: alice can still submit, her image is there, nothing was audited.
        await posted(core, alice, "still allowed")
        assert (await core.job(job_id)).image_path is not None
        assert await core.audit_log(admin(), is_admin=True) == []
        assert await core.server_settings(Platform.DISCORD, SERVER) == ServerSettings(
            Platform.DISCORD, SERVER
        )


async def test_an_admin_deletes_only_in_their_own_server(open_test_core: OpenCore) -> None:
    elsewhere = member("carl", server="g2")
    async with open_test_core() as core:
        job_id = await posted(core, elsewhere)
        with pytest.raises(NotAllowed):
            await core.delete(admin(), job_id, is_admin=True)
        assert core.image_file(await core.job(job_id)) is not None


# --- admission: limits, default and allowed styles, word filter, nsfw -------------------------


async def test_server_rate_limit_applies_and_is_clamped_to_the_operators(
    open_test_core: OpenCore,
) -> None:
    alice, dm = member("alice"), user("alice")
    async with open_test_core(TURBOBOT_RATE_BURST=5, TURBOBOT_RATE_PER_MINUTE=6) as core:
        loose = await core.update_server_settings(
            admin(), SettingsChange(rate_burst=50, rate_per_minute=100), is_admin=True
        )
        tight = await core.update_server_settings(
            admin(), SettingsChange(rate_burst=2, rate_per_minute=1), is_admin=True
        )
        await core.submit(request(alice))
        await core.submit(request(alice))
        with pytest.raises(RateLimited) as refused:
            await core.submit(request(alice))
    assert (loose.rate_burst, loose.rate_per_minute) == (5, 6)  # clamped, and shown so
    assert (tight.rate_burst, tight.rate_per_minute) == (2, 1)
    assert refused.value.retry_after == pytest.approx(60.0)  # the server's 1/min, not 6/min
    assert dm.server_key is None


async def test_server_pending_cap_is_clamped_too(open_test_core: OpenCore) -> None:
    gate_executor = FakeExecutor()
    async with open_test_core(executor=gate_executor, TURBOBOT_MAX_PENDING_PER_USER=3) as core:
        shown = await core.update_server_settings(
            admin(), SettingsChange(max_pending_per_user=1), is_admin=True
        )
        gate_executor.gate = asyncio.Event()
        await core.submit(request(member("alice")))
        with pytest.raises(QueueFull, match="limit is 1"):
            await core.submit(request(member("alice")))
        gate_executor.gate.set()
    assert shown.max_pending_per_user == 1


async def test_server_default_style_and_allowed_styles(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        await core.update_server_settings(
            admin(),
            SettingsChange(default_style="ink", allowed_styles=("ink",)),
            is_admin=True,
        )
        server_default = await core.submit(request(alice))
        await core.set_default_style(bob, "watercolor")  # not allowed here: server's applies
        bob_default = await core.submit(request(bob))
        explicit_none = await core.submit(request(alice, style="none"))
        with pytest.raises(BadRequest, match="not allowed in this server") as refused:
            await core.submit(request(alice, style="watercolor"))
        in_dm = await core.submit(request(user("alice"), style="watercolor"))
    assert server_default.job.spec.style == "ink"
    assert bob_default.job.spec.style == "ink"
    assert explicit_none.job.spec.style is None
    assert "ink" in str(refused.value)
    assert in_dm.job.spec.style == "watercolor"


async def test_banned_words_block_submit_derive_without_naming_the_word(
    open_test_core: OpenCore,
) -> None:
    alice = member("alice")
    async with open_test_core(TURBOBOT_BANNED_WORDS="gore*, 血腥") as core:
        original = await posted(core, alice, "a calm lake")
        await core.update_server_settings(
            admin(), SettingsChange(banned_words=("lake",)), is_admin=True
        )
        refused = []
        for prompt in (
            "GOREFEST tonight",
            "画一个血腥场景",
            "a " + wide("Lake"),
            "la\u200bke view",
        ):
            with pytest.raises(BadPrompt) as err:
                await core.submit(request(alice, prompt))
            refused.append(str(err.value))
        with pytest.raises(BadPrompt):
            await core.derive(
                alice, original, DeriveKind.REROLL
            )  # the old prompt meets today's word list
        fine = await core.submit(request(alice, "a flake of snow by the lakeside"))
        elsewhere = await core.submit(request(member("alice", server="g2"), "a calm lake"))
    assert refused == [str(BLOCKED_MESSAGE)] * 4
    assert all("lake" not in r.lower() and "gore" not in r.lower() for r in refused)
    assert fine.job.spec.prompt == "a flake of snow by the lakeside"
    assert elsewhere.job.spec.prompt == "a calm lake"


async def test_nsfw_styles_only_in_age_restricted_channels(
    open_test_core: OpenCore, executor: FakeExecutor
) -> None:
    executor.style_list.append(StyleInfo("spicy", "Spicy", "辣", "adult", 1.0, nsfw=True))
    alice = member("alice")
    adult = Requester(Platform.DISCORD, "alice", "Alice", "nsfw-chan", SERVER, channel_nsfw=True)
    async with open_test_core() as core:
        with pytest.raises(NotAllowed, match="age-restricted"):
            await core.submit(request(alice, style="spicy"))
        await core.set_default_style(alice, "spicy")
        defaulted = await core.submit(request(alice))  # a default silently falls back
        allowed = await core.submit(request(adult, style="spicy"))
    assert defaulted.job.spec.style is None
    assert allowed.job.spec.style == "spicy"


# --- blocks and audit -----------------------------------------------------------------------


async def test_blocked_user_is_refused_everything_in_that_server_only(
    open_test_core: OpenCore,
) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        await with_showcase(core)
        mine = await posted(core, alice)
        bobs = await posted(core, bob)
        await core.share(bob, bobs)
        await core.set_blocked(admin(), "alice", True, is_admin=True)
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: core.submit(request(alice)),
            lambda: core.derive(alice, mine, DeriveKind.REROLL),
            lambda: core.derive(alice, bobs, DeriveKind.REMIX),
            lambda: core.share(alice, mine),
        ]
        for attempt in attempts:
            with pytest.raises(NotAllowed, match=str(BLOCKED)):
                await attempt()
        elsewhere = await core.submit(request(member("alice", server="g2")))
        await core.set_blocked(admin(), "alice", False, is_admin=True)
        again = await core.submit(request(alice))
    assert elsewhere.job.id
    assert again.job.id


async def test_audit_log_records_settings_blocks_and_admin_deletes(
    open_test_core: OpenCore, clock: FakeClock
) -> None:
    alice = member("alice")
    async with open_test_core() as core:
        job_id = await posted(core, alice)
        await core.update_server_settings(admin(), SettingsChange(rate_burst=2), is_admin=True)
        clock.advance(1)
        await core.set_blocked(admin(), "alice", True, is_admin=True)
        await core.set_blocked(admin(), "alice", False, is_admin=True)
        await core.delete(admin(), job_id, is_admin=True)
        await core.delete(alice, await posted(core, alice), is_admin=False)  # own: not audited
        log = await core.audit_log(admin(), is_admin=True)
        other = await core.audit_log(member("root", server="g2"), is_admin=True)
    assert [(e.action, e.target, e.actor_user_id) for e in log] == [
        ("delete", f"job #{job_id} of user alice", "root"),
        ("unblock", "user alice", "root"),
        ("block", "user alice", "root"),
        ("settings", "settings", "root"),
    ]
    assert "rate_burst" in log[-1].detail
    assert log[0].at == clock.now()
    assert all(e.server_key == f"discord:{SERVER}" for e in log)
    assert other == []


# --- sharing, votes, gallery ----------------------------------------------------------------


async def test_share_goes_to_the_showcase_with_credit(open_test_core: OpenCore) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        job_id = await posted(core, alice, "a lighthouse")
        with pytest.raises(BadRequest, match="/settings") as no_showcase:
            await core.share(alice, job_id)
        await with_showcase(core)
        with pytest.raises(NotAllowed):
            await core.share(bob, job_id)
        ticket = await core.share(alice, job_id)
        again = await core.share(alice, job_id)
        await core.record_share(ticket.share_id, "post-1")
        found = await core.share_by_message(Platform.DISCORD, "post-1")
        missing = await core.share_by_message(Platform.TELEGRAM, "post-1")
        items = await core.gallery(Platform.DISCORD, SERVER)
        with pytest.raises(NotFound):
            await core.record_share(999, "x")
    assert str(no_showcase.value) == str(NO_SHOWCASE)
    assert (ticket.channel_id, ticket.credit_name, ticket.show_details) == (
        "showcase",
        "Alice",
        True,
    )
    assert ticket.job.id == job_id
    assert again.share_id == ticket.share_id
    assert found == ticket.share_id
    assert missing is None
    assert [(i.share_id, i.job.id, i.message_id, i.credit_name) for i in items] == [
        (ticket.share_id, job_id, "post-1", "Alice")
    ]
    assert items[0].job.spec.prompt == "a lighthouse"


async def test_only_posted_server_images_can_be_shared(open_test_core: OpenCore) -> None:
    async with open_test_core() as core:
        await with_showcase(core)
        dm_job = await posted(core, user("alice"))
        with pytest.raises(BadRequest, match="server or group"):
            await core.share(user("alice"), dm_job)
        with pytest.raises(NotFound):
            await core.share(member("alice"), 12345)


async def test_votes_one_per_user_and_own_votes_ignored(open_test_core: OpenCore) -> None:
    alice, bob, carol = member("alice"), member("bob"), member("carol")
    async with open_test_core() as core:
        await with_showcase(core)
        share = (await core.share(alice, await posted(core, alice))).share_id
        scores = [
            await core.vote(bob, share, 1),
            await core.vote(bob, share, 1),
            await core.vote(carol, share, 1),
            await core.vote(carol, share, -1),
            await core.vote(alice, share, 1),
            await core.vote(carol, share, 0),
        ]
        with pytest.raises(BadRequest):
            await core.vote(bob, share, 5)
        with pytest.raises(NotFound):
            await core.vote(bob, share + 1, 1)
    assert scores == [1, 1, 2, 0, 0, 1]


async def test_gallery_recent_and_top_by_week_and_month(
    open_test_core: OpenCore, clock: FakeClock
) -> None:
    alice, voters = member("alice"), [member(f"voter{i}") for i in range(3)]
    async with open_test_core() as core:
        await with_showcase(core)

        async def shared(prompt: str, votes: int) -> int:
            share = (await core.share(alice, await posted(core, alice, prompt))).share_id
            for voter in voters[:votes]:
                clock.advance(60)
                await core.vote(voter, share, 1)
            return share

        old = await shared("forty days ago", 3)
        clock.advance(30 * DAY)
        month = await shared("ten days ago", 2)
        clock.advance(10 * DAY)
        week_low = await shared("yesterday low", 0)
        week_high = await shared("yesterday high", 1)
        clock.advance(DAY)

        async def ids(**kw: object) -> list[int]:
            return [i.share_id for i in await core.gallery(Platform.DISCORD, SERVER, **kw)]  # type: ignore[arg-type]

        recent = await ids()
        top_all = await ids(sort="top")
        top_month = await ids(sort="top", period="month")
        top_week = await ids(sort="top", period="week")
        page_two = await ids(sort="top", limit=2, offset=2)
        other_server = await core.gallery(Platform.DISCORD, "g2")
        scores = [i.score for i in await core.gallery(Platform.DISCORD, SERVER, sort="top")]
    assert recent == [week_high, week_low, month, old]
    assert top_all == [old, month, week_high, week_low]
    assert top_month == [month, week_high, week_low]
    assert top_week == [week_high, week_low]
    assert page_two == [week_high, week_low]
    assert scores == [3, 2, 1, 0]
    assert other_server == []


async def test_deleted_images_leave_the_gallery(open_test_core: OpenCore) -> None:
    alice = member("alice")
    async with open_test_core() as core:
        await with_showcase(core)
        job_id = await posted(core, alice)
        share = (await core.share(alice, job_id)).share_id
        await core.delete(admin(), job_id, is_admin=True)
        items = await core.gallery(Platform.DISCORD, SERVER)
        with pytest.raises(NotFound):
            await core.vote(member("bob"), share, 1)
    assert items == []


# --- remix ----------------------------------------------------------------------------------


async def test_remix_copies_prompt_style_seed_and_credits_the_original(
    open_test_core: OpenCore,
) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        await with_showcase(core)
        original = await posted(core, alice, "a paper crane", style="ink", seed=77)
        private = await posted(core, alice, "not shared")
        await core.share(alice, original)
        ticket = await core.derive(bob, original, DeriveKind.REMIX)
        own = await core.derive(alice, private, DeriveKind.REMIX)
        with pytest.raises(NotAllowed, match="shared"):
            await core.derive(bob, private, DeriveKind.REMIX)
        credited = await core.job(ticket.job.parent_job_id or 0)
    spec = ticket.job.spec
    assert (spec.prompt, spec.style, spec.seed) == ("a paper crane", "ink", 77)
    assert ticket.job.requester.user_key == bob.user_key
    assert ticket.job.parent_job_id == original
    assert credited.requester.display_name == "Alice"
    assert own.job.parent_job_id == private


# --- privacy --------------------------------------------------------------------------------


async def test_opt_out_is_honoured_in_gallery_share_and_remix(open_test_core: OpenCore) -> None:
    alice, bob = member("alice"), member("bob")
    async with open_test_core() as core:
        await with_showcase(core)
        job_id = await posted(core, alice)
        share = (await core.share(alice, job_id)).share_id
        await core.record_share(share, "post-1")
        await core.vote(bob, share, 1)
        before = await core.gallery(Platform.DISCORD, SERVER)
        choice = await core.set_privacy(alice, share_opt_out=True)
        after = await core.gallery(Platform.DISCORD, SERVER, sort="top")
        with pytest.raises(NotAllowed, match="/privacy"):
            await core.share(alice, job_id)
        with pytest.raises(NotAllowed, match="private"):
            await core.derive(bob, job_id, DeriveKind.REMIX)
        with pytest.raises(NotFound):
            await core.vote(bob, share, 1)
        by_message = await core.share_by_message(Platform.DISCORD, "post-1")
        own_remix = await core.derive(alice, job_id, DeriveKind.REMIX)
        back = await core.set_privacy(alice, share_opt_out=False)
        stored = await core.privacy(alice)
    assert len(before) == 1
    assert choice.share_opt_out
    assert after == []
    assert by_message is None
    assert own_remix.job.parent_job_id == job_id
    assert not back.share_opt_out
    assert stored == back


async def test_hidden_details_are_flagged_on_tickets_and_gallery(open_test_core: OpenCore) -> None:
    alice = member("alice")
    async with open_test_core() as core:
        await with_showcase(core)
        await core.set_privacy(alice, hide_details=True)
        ticket = await core.share(alice, await posted(core, alice))
        items = await core.gallery(Platform.DISCORD, SERVER)
        privacy = await core.privacy(alice)
    assert not ticket.show_details
    assert not items[0].show_details
    assert privacy.hide_details
    assert not privacy.share_opt_out


async def test_forget_leaves_nothing_in_the_database_or_on_disk(
    open_test_core: OpenCore, tmp_path: Path
) -> None:
    zed = Requester(Platform.DISCORD, "zed-forget-me", "Zedkowski Q", "chan-z", SERVER)
    bob = member("bob")
    secret = "purple giraffe xylophone"
    data = tmp_path / "data"
    async with open_test_core() as core:
        await with_showcase(core)
        await core.set_default_style(zed, "ink")
        await core.set_privacy(zed, hide_details=True)
        first = await posted(core, zed, "a shared comet")
        second = await posted(core, zed, "deleted by an admin")
        third = await posted(core, zed, secret)
        files = [core.image_file(await core.job(i)) for i in (first, second, third)]
        share = await core.share(zed, first)
        await core.vote(bob, share.share_id, 1)
        bobs_share = await core.share(bob, await posted(core, bob, "bob's own"))
        await core.vote(zed, bobs_share.share_id, 1)
        remix = await core.derive(bob, first, DeriveKind.REMIX)
        await core.wait_until_idle(bob.user_key)
        await core.set_blocked(admin(), "zed-forget-me", True, is_admin=True)
        await core.set_blocked(admin(), "zed-forget-me", False, is_admin=True)
        await core.delete(admin(), second, is_admin=True)

        count = await core.forget(zed)

        db_bytes = (data / DB_NAME).read_bytes()
        wal = data / f"{DB_NAME}-wal"
        wal_bytes = wal.read_bytes() if wal.exists() else b""
        history = await core.history(zed)
        gallery = await core.gallery(Platform.DISCORD, SERVER)
        remixed = await core.job(remix.job.id)
        with pytest.raises(NotFound):
            await core.job(first)
        privacy = await core.privacy(zed)
        style = await core.default_style(zed)
        log = await core.audit_log(admin(), is_admin=True)
        bobs_score = await core.vote(bob, bobs_share.share_id, 0)
    assert count == 3
    assert all(f is not None for f in files)
    assert not any(f is not None and f.exists() for f in files)
    # "a shared comet": bob's remix copied zed's words; they go too (issue 15, item 5).
    for needle in ("zed-forget-me", "Zedkowski", secret, "a shared comet"):
        assert needle.encode() not in db_bytes, needle
        assert needle.encode() not in wal_bytes, needle
    assert history == []
    assert [i.credit_name for i in gallery] == ["Bob"]
    assert remixed.parent_job_id is None  # the credit link goes with the original
    assert remixed.image_path is not None  # bob keeps his image, not zed's prompt
    assert privacy.share_opt_out is False
    assert style is None
    assert {e.target for e in log} >= {"(forgotten user)", "job #2 of (forgotten user)"}
    assert bobs_score == 0


async def test_forget_waits_for_unfinished_jobs(open_test_core: OpenCore) -> None:
    gated = FakeExecutor(gate=asyncio.Event())
    alice = member("alice")
    async with open_test_core(executor=gated) as core:
        await core.submit(request(alice))
        with pytest.raises(NotAllowed, match="still being made"):
            await core.forget(alice)
        gated.gate.set()  # type: ignore[union-attr]
        await core.wait_until_idle(alice.user_key)
        assert await core.forget(alice) == 1


async def test_forget_keeps_a_block(open_test_core: OpenCore) -> None:
    alice = member("alice")
    async with open_test_core() as core:
        await core.set_blocked(admin(), "alice", True, is_admin=True)
        await core.forget(alice)
        with pytest.raises(NotAllowed, match=str(BLOCKED)):
            await core.submit(request(alice))


# --- migrations -----------------------------------------------------------------------------


@pytest.mark.parametrize("start", range(1, len(migrations())))
async def test_community_works_on_a_database_upgraded_from(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    db = await connect(path)
    await migrate(db, upto=start)
    await db.execute(
        "INSERT INTO jobs (id, platform, user_id, display_name, channel_id, server_id, user_key, "
        "server_key, prompt, seed, steps, width, height, state, created_at) VALUES (1, "
        "'discord', 'u', 'U', 'c', 'g1', 'discord:u', 'discord:g1', 'kept', 1, 4, 1024, 1024, "
        "'posted', 0)"
    )
    await db.close()
    async with open_store(path) as store:
        await store.write_one(
            "INSERT INTO shares (job_id, platform, server_key, user_key, channel_id, shared_at) "
            "VALUES (1, 'discord', 'discord:g1', 'discord:u', 'show', 0)",
            [],
            msg("core.op.share"),
        )
        rows = await store.query("SELECT job_id FROM shares")
    assert [r["job_id"] for r in rows] == [1]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(migrations())


# --- a bug found by an earlier helper ---------------------------------------------------------


async def test_cancelled_job_does_not_write_after_the_database_closed(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A job cancelled by a drain timeout awaited its "running" write, never orphaning it.

    The write is held up by another connection's lock, so it is still in flight when the
    shutdown gives up: it used to fail after the database closed ("Task exception was never
    retrieved").
    """
    data = tmp_path / "data"
    async with open_store(data / DB_NAME) as store:
        spec = GenerationSpec("held", None, 1, 4, 1024, 1024)
        job = Job(store.next_job_id(), member("alice"), spec, JobState.QUEUED, clock.now())
        await store.add_job(job)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    blocker = sqlite3.connect(data / DB_NAME, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the core's "running" write now waits for the lock
        executor = FakeExecutor(gate=asyncio.Event())
        async with open_core(
            make_settings(data), executor, clock, rng=random.Random(1),
            drain_timeout_s=0, busy_timeout_ms=200,
        ) as core:  # fmt: skip
            while not executor.calls:  # noqa: ASYNC110 (no timed sleep: yields until it runs)
                await asyncio.sleep(0)
            assert core.healthy
        blocker.execute("ROLLBACK")
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        blocker.close()
        loop.set_exception_handler(previous)
    assert unhandled == []
    assert "could not record a job as running" in caplog.text
    async with open_store(data / DB_NAME) as store:
        again = await store.get_job(job.id)
    assert again is not None
    assert again.state is JobState.QUEUED  # runs again at the next start
