"""Community features through the real adapter and the real core, over loopback. No mocks.

Showcase sharing with credit, ⭐ reactions as votes, the gallery, remix credit, privacy,
/forget, the word filter, blocking and the admin-only commands: each test plays the users and
the admin, then checks both what Discord was sent and what the core now says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from adapters.discord.format import requester_of
from bot.config import Settings
from bot.domain import JobAction, Platform, Requester, StyleInfo
from bot.testing.executor import DEFAULT_STYLES, FakeExecutor
from tests.discord.conftest import Bot, running_bot
from tests.discord.fake_discord import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL_ID,
    GUILD_ID,
    JSON,
    MANAGE_GUILD_PERMISSIONS,
    NSFW_CHANNEL_ID,
    SHOWCASE_ID,
    FakeDiscord,
    InteractionLog,
)
from tests.fakes import FakeClock

SERVER = str(GUILD_ID)
BLOCKED_BY_FILTER = "This prompt was blocked by this server's word filter."


async def _edited(fake: FakeDiscord, log: InteractionLog, containing: str) -> list[str]:
    await fake.wait_for(lambda: any(containing in t for t in log.texts()))
    return log.texts()


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Gateway events (reactions) answer nothing on REST: poll the core until it agrees."""

    async def poll() -> None:
        # ASYNC110: nothing to wait on (a vote makes no REST call); the core is the only witness.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), within)


async def _settle(fake: FakeDiscord, bot: Bot, jobs: int) -> None:
    await fake.wait_for(lambda: len(bot.executor.calls) >= jobs)
    for user in (ALICE, BOB, CAROL):
        await bot.core.wait_until_idle(f"{Platform.DISCORD}:{user}")


async def _imagine(
    fake: FakeDiscord, bot: Bot, prompt: str = "a lighthouse at dusk", user: int = ALICE
) -> tuple[int, JSON]:
    """Make an image; returns its job id and the channel message carrying it."""
    await fake.slash("imagine", {"prompt": prompt, "seed": 42, "style": "ink"}, user=user)
    await _settle(fake, bot, len(bot.executor.calls) + 1)
    job_id = bot.executor.calls[-1][0]
    await fake.wait_for(
        lambda: any(f"#{job_id} ·" in m["content"] for m in fake.posted_with_files())
    )
    (message,) = [m for m in fake.posted_with_files() if f"#{job_id} ·" in m["content"]]
    return job_id, message


async def _set(fake: FakeDiscord, **options: object) -> list[str]:
    """``/settings set`` by an admin; the reply must say the settings were saved."""
    log = await fake.slash("settings", options, sub="set", user=BOB, admin=True)
    await fake.wait_for(lambda: bool(log.edits))
    texts = log.texts()
    assert texts[-1].startswith(("Settings saved.", "设置已保存。")), texts
    return texts


async def _with_showcase(fake: FakeDiscord) -> None:
    await _set(fake, showcase_channel=SHOWCASE_ID)


async def _share(fake: FakeDiscord, job_id: int, message: JSON, user: int = ALICE) -> JSON:
    """Press Share; returns the showcase post."""
    before = len(fake.channel_messages(SHOWCASE_ID))
    log = await fake.click(int(message["id"]), f"tb:share:{job_id}", user=user)
    await _edited(fake, log, "Shared to the showcase")
    posts = fake.channel_messages(SHOWCASE_ID)
    assert len(posts) == before + 1
    return posts[-1]


def _fullwidth(text: str) -> str:
    """ASCII letters as their full-width forms (U+FF21...), a classic filter dodge."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def _files_under(folder: Path) -> dict[Path, bytes]:
    """Every file (database, WAL, images) the bot keeps, with its bytes."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _button_ids(message: JSON) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


async def test_share_posts_to_showcase_with_credit_and_remix_button(
    fake: FakeDiscord, bot: Bot
) -> None:
    await _with_showcase(fake)
    job_id, message = await _imagine(fake, bot)
    assert f"tb:remix:{job_id}" in _button_ids(message)  # results can be remixed too

    log = await fake.click(int(message["id"]), f"tb:share:{job_id}")
    texts = await _edited(fake, log, "Shared to the showcase")
    (post,) = fake.channel_messages(SHOWCASE_ID)

    assert texts[-1].endswith(f"/{GUILD_ID}/{SHOWCASE_ID}/{post['id']}")
    assert post["content"].startswith("**a lighthouse at dusk**")
    assert "Shared by Alice" in post["content"]
    assert "style ink · seed 42" in post["content"]
    assert "<@" not in post["content"]  # credit by name: a showcase post pings nobody
    assert post["allowed_mentions"] == {"parse": []}
    (jpeg,) = post["_files"]
    assert jpeg[:2] == b"\xff\xd8"
    assert _button_ids(post) == [f"tb:remix:{job_id}"]
    assert (int(post["id"]), "⭐") in fake.bot_reactions  # the first star, so voting is a click
    share_id = await bot.core.share_by_message(Platform.DISCORD, post["id"])
    assert share_id is not None

    # A second click points at the same post instead of posting the image again.
    again = await fake.click(int(message["id"]), f"tb:share:{job_id}")
    texts = await _edited(fake, again, "Shared to the showcase")
    assert texts[-1].endswith(f"/{GUILD_ID}/{SHOWCASE_ID}/{post['id']}")
    assert len(fake.channel_messages(SHOWCASE_ID)) == 1


async def test_share_without_a_showcase_channel_gives_the_link(fake: FakeDiscord, bot: Bot) -> None:
    job_id, message = await _imagine(fake, bot)
    log = await fake.click(int(message["id"]), f"tb:share:{job_id}")
    texts = await _edited(fake, log, "no showcase channel")
    assert texts[-1].endswith(f"/{message['channel_id']}/{message['id']}")
    assert fake.channel_messages(SHOWCASE_ID) == []


async def test_hidden_details_share_credit_only(fake: FakeDiscord, bot: Bot) -> None:
    await _with_showcase(fake)
    privacy = await fake.slash("privacy", {"hide_details": True})
    await _edited(fake, privacy, "Show details: no")
    job_id, message = await _imagine(fake, bot, "a secret garden")
    post = await _share(fake, job_id, message)
    assert "Shared by Alice" in post["content"]
    assert "secret garden" not in post["content"]
    assert "seed" not in post["content"]


async def test_star_reactions_are_votes_that_order_the_gallery(fake: FakeDiscord, bot: Bot) -> None:
    await _with_showcase(fake)
    first_job, first = await _imagine(fake, bot, "first image")
    second_job, second = await _imagine(fake, bot, "second image", user=BOB)
    first_post = await _share(fake, first_job, first)
    second_post = await _share(fake, second_job, second, user=BOB)

    async def top() -> list[tuple[int, int]]:
        items = await bot.core.gallery(Platform.DISCORD, SERVER, sort="top")
        return [(i.job.id, i.score) for i in items]

    await fake.react(int(second_post["id"]), "⭐", user=ALICE)
    await fake.react(int(second_post["id"]), "⭐", user=CAROL)
    await fake.react(int(first_post["id"]), "😂", user=CAROL)  # not a vote
    await _eventually(lambda: _equals(top(), [(second_job, 2), (first_job, 0)]))

    shown = await fake.slash("gallery", {"sort": "top"})
    text = (await _edited(fake, shown, "Gallery"))[-1]
    assert shown.callbacks[0]["data"]["flags"] == 64  # ephemeral
    assert text.index("second image") < text.index("first image")
    assert "⭐ 2" in text
    assert f"/{SHOWCASE_ID}/{second_post['id']}" in text

    await fake.react(int(second_post["id"]), "⭐", user=ALICE, added=False)
    await fake.react(int(second_post["id"]), "⭐", user=CAROL, added=False)
    await fake.react(int(first_post["id"]), "⭐", user=BOB)
    await _eventually(lambda: _equals(top(), [(first_job, 1), (second_job, 0)]))


async def _equals(got: Awaitable[object], want: object) -> bool:
    return await got == want


async def test_gallery_pages_with_buttons(fake: FakeDiscord, bot: Bot) -> None:
    await _with_showcase(fake)
    for n in range(6):
        job_id, message = await _imagine(fake, bot, f"picture number {n}")
        await _share(fake, job_id, message)

    shown = await fake.slash("gallery", {"sort": "recent", "period": "week"})
    first_page = (await _edited(fake, shown, "Gallery"))[-1]
    assert "picture number 5" in first_page
    assert "picture number 0" not in first_page
    assert shown.original is not None
    assert _button_ids(shown.original) == ["tb:gal:recent:week:2"]

    turned = await fake.click(int(shown.original["id"]), "tb:gal:recent:week:2")
    await fake.answered(turned)
    assert turned.callback_type == 7  # the same ephemeral message shows the next page
    page_two = fake.messages[int(shown.original["id"])]
    assert "picture number 0" in page_two["content"]
    assert "picture number 5" not in page_two["content"]
    assert _button_ids(page_two) == ["tb:gal:recent:week:1"]


async def test_remix_from_showcase_credits_the_original(fake: FakeDiscord, bot: Bot) -> None:
    await _with_showcase(fake)
    job_id, message = await _imagine(fake, bot)
    post = await _share(fake, job_id, message)

    form = await fake.click(int(post["id"]), f"tb:remix:{job_id}", user=BOB)
    await fake.answered(form)
    remix = await fake.submit_modal(form, user=BOB)  # the prompt as it was, pre-filled
    await _edited(fake, remix, "Queued")
    await _settle(fake, bot, 2)
    remix_job, spec = bot.executor.calls[-1]

    original = bot.executor.calls[0][1]
    assert (spec.prompt, spec.style, spec.seed) == (original.prompt, original.style, original.seed)
    assert (await bot.core.job(remix_job)).parent_job_id == job_id

    def posted() -> list[JSON]:
        return [m for m in fake.messages.values() if m["attachments"]]

    await fake.wait_for(lambda: any(f"#{remix_job} ·" in m["content"] for m in posted()))
    (result,) = [m for m in posted() if f"#{remix_job} ·" in m["content"]]
    assert result["content"].startswith(f"<@{BOB}>")  # the remixer asked for it
    assert f"remix of #{job_id} by Alice" in result["content"]
    assert result["allowed_mentions"]["users"] == [BOB]  # the original's author is not pinged


async def test_remix_form_never_shows_a_hidden_prompt(fake: FakeDiscord, bot: Bot) -> None:
    """The author hides details: Bob's form starts empty, and left empty it keeps the
    original prompt for the engine without ever showing it to him."""
    await _with_showcase(fake)
    privacy = await fake.slash("privacy", {"hide_details": True})
    await _edited(fake, privacy, "details")
    job_id, message = await _imagine(fake, bot, "a secret garden")
    post = await _share(fake, job_id, message)

    form = await fake.click(int(post["id"]), f"tb:remix:{job_id}", user=BOB)
    await fake.answered(form)
    assert form.modal is not None
    prompt_input = form.modal["components"][0]["components"][0]
    assert "secret" not in json.dumps(form.modal)
    assert prompt_input["required"] is False
    remix = await fake.submit_modal(form, user=BOB)
    await _edited(fake, remix, "Queued")
    await _settle(fake, bot, 2)
    remix_job, spec = bot.executor.calls[-1]
    assert spec.prompt == "a secret garden"  # the engine gets the real one
    assert (await bot.core.job_for(_as(BOB, "Bob"), remix_job, JobAction.VIEW)).details_hidden


async def test_opt_out_is_honoured_in_share_and_gallery(fake: FakeDiscord, bot: Bot) -> None:
    await _with_showcase(fake)
    shared_job, shared = await _imagine(fake, bot, "shared before opting out")
    post = await _share(fake, shared_job, shared)
    later_job, later = await _imagine(fake, bot, "made after opting out")

    privacy = await fake.slash("privacy", {"share_opt_out": True})
    await _edited(fake, privacy, "showcase and gallery: no")

    refused = await fake.click(int(later["id"]), f"tb:share:{later_job}")
    await fake.wait_for(lambda: bool(refused.edits))
    assert "Shared to the showcase" not in refused.texts()[-1]
    # Opting out deleted the earlier showcase post too (issue 15, item 5).
    await fake.wait_for(lambda: not fake.channel_messages(SHOWCASE_ID))
    assert int(post["id"]) in fake.deleted_messages

    shown = await fake.slash("gallery")
    text = (await _edited(fake, shown, "No shared images"))[-1]
    assert "shared before opting out" not in text
    assert await bot.core.gallery(Platform.DISCORD, SERVER) == []


async def test_banned_word_variants_get_the_generic_refusal(fake: FakeDiscord, bot: Bot) -> None:
    await _set(fake, banned_words="dragon, blood*")
    for prompt in (
        f"a {_fullwidth('DRAGON')} flying",
        "a dra\u200bgon",
        "a Dragon.",
        "bloodbath at noon",
    ):
        log = await fake.slash("imagine", {"prompt": prompt})
        texts = await _edited(fake, log, "blocked")
        assert texts == [BLOCKED_BY_FILTER]
        assert "dragon" not in texts[-1].lower()
    assert bot.executor.calls == []
    allowed = await fake.slash("imagine", {"prompt": "a dragonfly"})  # a whole word only
    await _edited(fake, allowed, "Queued")


async def test_settings_set_and_show_back_to_the_admin(fake: FakeDiscord, bot: Bot) -> None:
    texts = await _set(
        fake,
        default_style="ink",
        allowed_styles="ink, watercolor",
        rate_per_minute=2.5,
        rate_burst=3,
        pending_cap=2,
        showcase_channel=SHOWCASE_ID,
        banned_words="dragon",
        share_outside=False,
    )
    reply = texts[-1]
    assert reply.startswith("Settings saved.")
    for part in (
        "Default style: ink",
        "Allowed styles: ink, watercolor",
        "Images per minute per user: 2.5",
        f"Showcase channel: <#{SHOWCASE_ID}>",
        "Banned words: `dragon`",
        "Share outside this server: no",
    ):
        assert part in reply
    settings = await bot.core.server_settings(Platform.DISCORD, SERVER)
    assert settings.default_style == "ink"
    assert settings.allowed_styles == ("ink", "watercolor")
    assert settings.showcase_channel_id == str(SHOWCASE_ID)
    assert settings.banned_words == ("dragon",)
    assert settings.allow_external_share is False

    reset = await _set(fake, reset="default_style, banned_words", language="zh")
    assert reset[-1].startswith("设置已保存。")
    settings = await bot.core.server_settings(Platform.DISCORD, SERVER)
    assert (settings.default_style, settings.banned_words, settings.language) == (None, (), "zh")
    shown = await fake.slash("settings", sub="show", permissions=MANAGE_GUILD_PERMISSIONS)
    assert (await _edited(fake, shown, "服务器设置"))[-1].endswith("禁用词：无")  # noqa: RUF001
    # Replies follow the server's language, whatever the user's client locale.
    privacy = await fake.slash("privacy", locale="en-US")
    assert "分享时显示细节" in (await _edited(fake, privacy, "。"))[-1]


async def test_admin_commands_are_marked_and_refused_to_members(
    fake: FakeDiscord, bot: Bot
) -> None:
    manage_guild = 1 << 5
    marked = {c["name"]: c.get("default_member_permissions") or 0 for c in fake.commands[None]}
    admin_only = ("settings", "block", "unblock", "audit")
    assert {n: int(marked[n]) for n in admin_only} == dict.fromkeys(admin_only, manage_guild)
    assert marked["imagine"] == 0
    attempts = [
        await fake.slash("settings", sub="show", user=CAROL),
        await fake.slash("settings", {"banned_words": "cat"}, sub="set", user=CAROL),
        await fake.slash("block", {"user": ALICE}, user=CAROL),
        await fake.slash("unblock", {"user": ALICE}, user=CAROL),
        await fake.slash("audit", user=CAROL),
    ]
    for log in attempts:
        await fake.wait_for(lambda log=log: bool(log.edits))
        text = log.texts()[-1]
        assert "admin" in text.lower(), text
    settings = await bot.core.server_settings(Platform.DISCORD, SERVER)
    assert settings.banned_words == ()
    still_allowed = await fake.slash("imagine", {"prompt": "a cat"})
    await _edited(fake, still_allowed, "Queued")
    assert await bot.core.audit_log(_as(BOB, "Bob"), is_admin=True) == []


def _as(user: int, name: str) -> Requester:
    return requester_of(user, name, CHANNEL_ID, GUILD_ID)


async def test_block_unblock_and_audit(fake: FakeDiscord, bot: Bot) -> None:
    blocked = await fake.slash("block", {"user": ALICE}, user=BOB, admin=True)
    await _edited(fake, blocked, "is blocked")
    refused = await fake.slash("imagine", {"prompt": "a cat"})
    assert (await _edited(fake, refused, "blocked"))[-1] == (
        "You are blocked from using this bot in this server."
    )
    unblocked = await fake.slash("unblock", {"user": ALICE}, user=BOB, admin=True)
    await _edited(fake, unblocked, "again")
    ok = await fake.slash("imagine", {"prompt": "a cat"})
    await _edited(fake, ok, "Queued")

    await _settle(fake, bot, 1)
    (message,) = fake.posted_with_files()
    job_id = bot.executor.calls[0][0]
    deleted = await fake.click(int(message["id"]), f"tb:delete:{job_id}", user=BOB, admin=True)
    await _edited(fake, deleted, f"Deleted job #{job_id}")  # admins delete any bot image
    assert int(message["id"]) in fake.deleted_messages

    audit = await fake.slash("audit", user=BOB, permissions=MANAGE_GUILD_PERMISSIONS)
    text = (await _edited(fake, audit, "Audit log"))[-1]
    _, deletion, unblocking, blocking = text.splitlines()  # newest first
    assert f"**delete** job #{job_id} of user {ALICE}" in deletion
    assert f"**unblock** user {ALICE}" in unblocking
    assert f"**block** user {ALICE}" in blocking


async def test_forget_asks_first_and_leaves_nothing(
    settings: Settings, fake: FakeDiscord, bot: Bot
) -> None:
    await _with_showcase(fake)
    job_id, message = await _imagine(fake, bot)
    await _share(fake, job_id, message)
    await _imagine(fake, bot, "another one")
    bobs_job, bobs = await _imagine(fake, bot, "bob's own", user=BOB)
    bobs_post = await _share(fake, bobs_job, bobs, user=BOB)
    await fake.react(int(bobs_post["id"]), "⭐", user=ALICE)  # Alice's vote is her data too

    async def bobs_score() -> int:
        (item,) = await bot.core.gallery(Platform.DISCORD, SERVER, sort="top", limit=1)
        return item.score

    await _eventually(lambda: _equals(bobs_score(), 1))
    privacy = await fake.slash("privacy", {"hide_details": True})
    await _edited(fake, privacy, "details")

    asked = await fake.slash("forget")
    await _edited(fake, asked, "Sure?")
    assert asked.original is not None
    assert _button_ids(asked.original) == [f"tb:forget:{ALICE}"]
    assert len(await bot.core.history(_as(ALICE, "Alice"), limit=10)) == 2  # nothing deleted yet

    by_bob = await fake.click(int(asked.original["id"]), f"tb:forget:{ALICE}", user=BOB)
    await _edited(fake, by_bob, "not for you")
    confirmed = await fake.click(int(asked.original["id"]), f"tb:forget:{ALICE}")
    await _edited(fake, confirmed, "Deleted: 2 jobs")

    assert await bot.core.history(_as(ALICE, "Alice"), limit=10) == []
    (left,) = await bot.core.gallery(Platform.DISCORD, SERVER)
    assert (left.job.id, left.score) == (bobs_job, 0)  # Bob keeps his share; her vote is gone
    files = await asyncio.to_thread(_files_under, settings.data_dir)
    bobs_file = bot.core.image_file(await bot.core.job(bobs_job))
    assert [path for path in files if path.suffix == ".jpg"] == [bobs_file]  # Alice's are gone
    alice = str(ALICE).encode()
    assert [path for path, data in files.items() if alice in data] == []


async def test_nsfw_styles_only_in_age_restricted_channels(
    settings: Settings, fake: FakeDiscord
) -> None:
    spicy = StyleInfo("spicy", "Spicy", "辣", "for grown-ups", 1.0, nsfw=True)
    executor = FakeExecutor(style_list=[*DEFAULT_STYLES, spicy])
    async with running_bot(settings, executor, FakeClock()) as bot:
        refused = await fake.slash("imagine", {"prompt": "a cat", "style": "spicy"})
        assert "age-restricted" in (await _edited(fake, refused, "age-restricted"))[-1]
        allowed = await fake.slash(
            "imagine", {"prompt": "a cat", "style": "spicy"}, channel=NSFW_CHANNEL_ID
        )
        await _edited(fake, allowed, "Queued")
        await _settle(fake, bot, 1)
        assert [spec.style for _, spec in executor.calls] == ["spicy"]


async def test_a_chinese_server_gets_core_errors_in_chinese(fake: FakeDiscord, bot: Bot) -> None:
    """Issue 16: the core's errors were English in every server."""
    await _set(fake, language="zh")
    log = await fake.slash("imagine", {"prompt": "a cat", "style": "vaporwave"})
    texts = await _edited(fake, log, "未知风格")
    assert texts[-1].startswith("未知风格 'vaporwave'。可用风格：")  # noqa: RUF001
    assert "watercolor" in texts[-1]
    assert bot.executor.calls == []
