"""The real adapter and the real core against the fake Discord, over loopback. No mocks.

Each test plays a user: it sends what Discord would send (a slash command, an autocomplete, a
button click) and checks what the bot sent back: the deferral, the ephemeral texts, and the
ordinary channel message carrying the JPEG, the mention and the buttons.
"""

from __future__ import annotations

import asyncio
import logging
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from adapters.discord import DiscordAdapter
from adapters.discord.format import requester_of
from adapters.discord.texts import say
from bot.config import Settings
from bot.domain import TURBO_STEPS, Platform, StyleInfo
from bot.testing.executor import FakeExecutor, tiny_jpeg
from tests.discord.conftest import Bot, make_settings, running_bot
from tests.discord.fake_discord import (
    ALICE,
    BOB,
    CHANNEL_ID,
    GUILD_ID,
    JSON,
    FakeDiscord,
    InteractionLog,
)
from tests.fakes import FakeClock

ALICE_KEY = f"{Platform.DISCORD}:{ALICE}"
DEFERRED_EPHEMERAL = {"type": 5, "data": {"flags": 64}}


async def _edited(fake: FakeDiscord, log: InteractionLog, containing: str) -> list[str]:
    """Wait until the ephemeral reply shows ``containing``; return every text shown."""
    await fake.wait_for(lambda: any(containing in t for t in log.texts()))
    return log.texts()


async def _settle(fake: FakeDiscord, bot: Bot, jobs: int) -> None:
    """Wait until ``jobs`` generations started and every job is posted and recorded."""
    await fake.wait_for(lambda: len(bot.executor.calls) >= jobs)
    for user in (ALICE, BOB):
        await bot.core.wait_until_idle(f"{Platform.DISCORD}:{user}")


async def _imagine(fake: FakeDiscord, bot: Bot, **options: object) -> tuple[InteractionLog, JSON]:
    log = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", **options})
    await _settle(fake, bot, len(bot.executor.calls) + 1)
    return log, fake.posted_with_files()[-1]


def _jpeg(message: JSON) -> Image.Image:
    (data,) = message["_files"]
    return Image.open(BytesIO(data))


async def test_commands_are_registered_with_chinese_localisations(
    fake: FakeDiscord, bot: Bot
) -> None:
    assert fake.registered_names() == [
        *("Describe", "Imagine from image"),  # the message menus (issues 14, 13)
        *("audit", "block", "describe", "forget", "gallery", "help", "history", "imagine"),
        "privacy",
        *("queue", "settings", "show", "style", "styles", "unblock"),
    ]
    (imagine,) = [c for c in fake.commands[None] if c["name"] == "imagine"]
    assert imagine["description_localizations"] == {"zh-CN": "根据提示词生成图片"}
    options = {o["name"]: o for o in imagine["options"]}
    assert options["style"]["autocomplete"] is True
    assert "choices" not in options["style"]  # a choice list would be cut at 25 styles
    assert [c["value"] for c in options["aspect"]["choices"]][:2] == ["1:1", "16:9"]
    assert options["steps"]["max_value"] == 8
    # The negative prompt, CFG and images per prompt (issue 13), localised like the others.
    assert (options["negative"]["type"], options["cfg"]["type"], options["n"]["type"]) == (3, 10, 4)
    assert (options["cfg"]["min_value"], options["cfg"]["max_value"]) == (1, 10)
    assert (options["n"]["min_value"], options["n"]["max_value"]) == (1, 4)
    for name in ("negative", "cfg", "n"):
        assert options[name]["description_localizations"]["zh-CN"], name


async def test_commands_sync_to_configured_guilds(tmp_path: Path, fake: FakeDiscord) -> None:
    settings = make_settings(tmp_path, fake, DISCORD_GUILD_IDS="123,456")
    async with running_bot(settings, FakeExecutor(), FakeClock()):
        assert set(fake.commands) == {123, 456}
        assert "imagine" in {c["name"] for c in fake.commands[123]}


async def test_imagine_defers_then_posts_jpeg_in_channel_with_mention(
    fake: FakeDiscord, bot: Bot
) -> None:
    log, message = await _imagine(fake, bot, seed=42, steps=2)

    assert log.callbacks[0] == DEFERRED_EPHEMERAL  # acknowledged before any core work
    assert log.callback_at is not None
    assert log.callback_at - log.sent_at < 3.0  # Discord drops unacknowledged interactions
    # An ordinary channel message (no interaction token needed) with the image and a mention.
    assert "webhook_id" not in message
    assert int(message["channel_id"]) == CHANNEL_ID
    assert message["content"].startswith(f"<@{ALICE}> **a lighthouse at dusk**")
    assert "seed 42" in message["content"]
    assert "2 steps" in message["content"]
    assert message["allowed_mentions"] == {"parse": [], "users": [ALICE]}
    assert _jpeg(message).format == "JPEG"
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    job_id = bot.executor.calls[0][0]
    assert ids == [
        *(f"tb:it:{op}:{job_id}:1" for op in ("vs", "vx", "us", "uc")),
        *(f"tb:{a}:{job_id}" for a in ("remix", "reroll", "restyle", "share", "delete", "info")),
        f"tb:enhance:{job_id}",  # a row of its own (issue 14)
    ]
    texts = await _edited(fake, log, "Done!")
    assert texts[0].startswith(f"#{job_id} · Queued: position 1, about")
    assert texts[-1].endswith(f"/{CHANNEL_ID}/{message['id']}")
    job = await bot.core.job(job_id)
    assert job.posted_message_id == message["id"]


async def test_reroll_button_posts_a_new_image_with_a_new_seed(fake: FakeDiscord, bot: Bot) -> None:
    _, first = await _imagine(fake, bot, seed=7)
    first_job = bot.executor.calls[0][0]

    click = await fake.click(int(first["id"]), f"tb:reroll:{first_job}", user=BOB)
    await fake.answered(click)
    await _settle(fake, bot, 2)

    assert click.callbacks[0] == DEFERRED_EPHEMERAL
    second_job, spec = bot.executor.calls[1]
    assert spec.prompt == "a lighthouse at dusk"
    assert spec.seed != 7
    second = fake.posted_with_files()[-1]
    assert second["content"].startswith(f"<@{BOB}>")  # the one who clicked asked for it
    assert (await bot.core.job(second_job)).parent_job_id == first_job


async def test_variation_and_restyle_buttons_derive_with_seed_and_style(
    fake: FakeDiscord, bot: Bot
) -> None:
    _, first = await _imagine(fake, bot, seed=1000)
    job = bot.executor.calls[0][0]

    # A post from before issue 13 still carries the seed-only Variations button: it works.
    first["components"][0]["components"][0]["custom_id"] = f"tb:vary:{job}"
    vary = await fake.click(int(first["id"]), f"tb:vary:{job}")
    await _edited(fake, vary, "Done!")
    assert 1000 < bot.executor.calls[1][1].seed <= 1064

    restyle = await fake.click(int(first["id"]), f"tb:restyle:{job}")
    await fake.wait_for(lambda: restyle.edits)
    assert restyle.original is not None
    pick = await fake.click(int(restyle.original["id"]), f"tb:style:{job}", values=["ink"])
    await _edited(fake, pick, "Done!")
    assert bot.executor.calls[2][1].style == "ink"
    assert bot.executor.calls[2][1].seed == 1000


async def test_buttons_keep_working_after_a_restart(settings: Settings, fake: FakeDiscord) -> None:
    async with running_bot(settings, FakeExecutor(), FakeClock()) as bot:
        _, message = await _imagine(fake, bot)
        job = bot.executor.calls[0][0]

    async with running_bot(settings, FakeExecutor(), FakeClock()) as bot:
        info = await fake.click(int(message["id"]), f"tb:info:{job}")
        texts = await _edited(fake, info, f"Job #{job}")
        assert "Prompt: a lighthouse at dusk" in texts[-1]
        share = await fake.click(int(message["id"]), f"tb:share:{job}")
        texts = await _edited(fake, share, "discord.com/channels")
        assert texts[-1].endswith(f"/{CHANNEL_ID}/{message['id']}")


async def test_restart_between_queue_and_delivery_posts_once(
    settings: Settings, fake: FakeDiscord
) -> None:
    stuck = FakeExecutor(gate=asyncio.Event())  # the GPU never finishes before the restart
    async with running_bot(settings, stuck, FakeClock(), drain_timeout_s=0) as bot:
        log = await fake.slash("imagine", {"prompt": "a ship in a bottle"})
        await _edited(fake, log, "Queued")
        await fake.wait_for(lambda: bool(stuck.calls))
    assert fake.posted_with_files() == []

    async with running_bot(settings, FakeExecutor(), FakeClock()) as bot:
        await _settle(fake, bot, 1)
        (message,) = fake.posted_with_files()
        assert message["content"].startswith(f"<@{ALICE}> **a ship in a bottle**")
        assert bot.executor.calls[0][1].prompt == "a ship in a bottle"
    assert len(fake.posted_with_files()) == 1  # the drain on exit did not post it again


async def test_bad_prompt_gets_a_clear_ephemeral_error(fake: FakeDiscord, bot: Bot) -> None:
    log = await fake.slash("imagine", {"prompt": "   \u200b "})
    texts = await _edited(fake, log, "empty")
    assert log.callbacks[0] == DEFERRED_EPHEMERAL
    assert texts == ["Please describe the image: the prompt is empty."]
    assert bot.executor.calls == []


async def test_unknown_style_names_the_available_ones(fake: FakeDiscord, bot: Bot) -> None:
    log = await fake.slash("imagine", {"prompt": "a cat", "style": "vaporwave"})
    texts = await _edited(fake, log, "Unknown style")
    assert "'vaporwave'" in texts[-1]
    assert "watercolor" in texts[-1]
    assert bot.executor.calls == []


async def test_style_autocomplete_returns_at_most_25(settings: Settings, fake: FakeDiscord) -> None:
    many = [StyleInfo(f"style{i:02d}", f"Style {i}", f"风格{i}", "a style", 1.0) for i in range(40)]
    executor = FakeExecutor(style_list=many)
    async with running_bot(settings, executor, FakeClock()):
        log = await fake.slash("imagine", {"prompt": "x", "style": ""}, focused="style")
        await fake.answered(log)
        ((callback),) = log.callbacks
        assert callback["type"] == 8  # autocomplete result
        choices = callback["data"]["choices"]
        assert len(choices) == 25
        log = await fake.slash("imagine", {"prompt": "x", "style": "风格3"}, focused="style")
        await fake.answered(log)
        values = [c["value"] for c in log.callbacks[0]["data"]["choices"]]
        assert values == ["style03", *[f"style{i}" for i in range(30, 40)]]


async def test_progress_edits_are_throttled_by_the_injected_clock(
    settings: Settings, fake: FakeDiscord
) -> None:
    gate = asyncio.Event()
    executor = FakeExecutor(gate=gate)
    clock = FakeClock()
    async with running_bot(settings, executor, clock) as bot:
        log = await fake.slash("imagine", {"prompt": "a slow one"})
        await _edited(fake, log, "Queued")
        await fake.wait_for(lambda: bool(executor.calls))
        job = await bot.core.job(executor.calls[0][0])
        for step in (1, 2, 3):
            await bot.adapter.progress(job, step, 4)
        await _edited(fake, log, "step 1/4")
        clock.advance(1.0)
        await bot.adapter.progress(job, 4, 4)
        texts = await _edited(fake, log, "step 4/4")
        assert [t for t in texts if "Working" in t] == [
            f"#{job.id} · Working: step 1/4.",
            f"#{job.id} · Working: step 4/4.",
        ]
        gate.set()
        await _edited(fake, log, "Done!")


async def test_delete_button_owner_only_then_removes_message(fake: FakeDiscord, bot: Bot) -> None:
    _, message = await _imagine(fake, bot)
    job = bot.executor.calls[0][0]

    by_bob = await fake.click(int(message["id"]), f"tb:delete:{job}", user=BOB)
    await fake.wait_for(lambda: by_bob.edits)
    assert int(message["id"]) in fake.messages  # not Bob's image, not deleted
    assert bot.core.image_file(await bot.core.job(job)) is not None

    by_alice = await fake.click(int(message["id"]), f"tb:delete:{job}")
    await _edited(fake, by_alice, f"Deleted job #{job}")
    assert int(message["id"]) in fake.deleted_messages
    assert bot.core.image_file(await bot.core.job(job)) is None


async def test_history_queue_show_and_help(fake: FakeDiscord, bot: Bot) -> None:
    _, message = await _imagine(fake, bot)
    job = bot.executor.calls[0][0]

    history = await fake.slash("history")
    texts = await _edited(fake, history, "Your images")
    assert f"`#{job}`" in texts[-1]
    assert history.callbacks[0]["data"]["flags"] == 64  # ephemeral

    queue = await fake.slash("queue")
    assert await _edited(fake, queue, "no jobs")

    show = await fake.slash("show", {"job": job})
    await _edited(fake, show, "discord.com/channels")
    await fake.wait_for(lambda: len(fake.posted_with_files()) == 2)
    assert fake.posted_with_files()[-1]["content"] == message["content"]

    shown_zh = await fake.slash("help", locale="zh-CN")
    assert "生成图片" in (await _edited(fake, shown_zh, "/imagine"))[-1]


async def test_style_set_and_list(fake: FakeDiscord, bot: Bot) -> None:
    chosen = await fake.slash("style", {"style": "ink"}, sub="set")
    await _edited(fake, chosen, "default style is now ink")
    listed = await fake.slash("style", sub="list")
    text = (await _edited(fake, listed, "Ink wash"))[-1]
    assert "(`ink`) ✓" in text
    alice = requester_of(ALICE, "Alice", CHANNEL_ID, GUILD_ID)
    assert await bot.core.default_style(alice) == "ink"


async def test_generation_failure_is_told_in_the_ephemeral_reply(
    settings: Settings, fake: FakeDiscord
) -> None:
    executor = FakeExecutor(fail_prompts={"a cursed prompt"})
    async with running_bot(settings, executor, FakeClock()) as bot:
        log = await fake.slash("imagine", {"prompt": "a cursed prompt"})
        await _settle(fake, bot, 1)
        texts = await _edited(fake, log, "Failed")
        assert texts[-1].endswith("Failed: The fake GPU refused this prompt.")
        assert fake.posted_with_files() == []


async def test_refused_post_is_reported_not_retried(fake: FakeDiscord, bot: Bot) -> None:
    fake.fail_next_post = 403
    log = await fake.slash("imagine", {"prompt": "a forbidden channel"})
    await _settle(fake, bot, 1)
    texts = await _edited(fake, log, "could not be posted")
    assert "Failed: The image was made but could not be posted" in texts[-1]
    posts = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/channels/")]
    assert len(posts) == 1  # no request storm: one refused send, no blind retry


async def test_after_stop_intake_new_work_is_refused_politely(fake: FakeDiscord, bot: Bot) -> None:
    await bot.adapter.stop_intake()
    log = await fake.slash("imagine", {"prompt": "too late"})
    texts = await _edited(fake, log, "restarting")
    assert texts == ["The bot is restarting; please try again in a minute."]
    helped = await fake.slash("help")
    assert await _edited(fake, helped, "/imagine")  # read-only commands still answer
    assert bot.executor.calls == []


async def test_image_over_the_upload_limit_is_explained(
    settings: Settings, fake: FakeDiscord
) -> None:
    async with running_bot(
        settings, FakeExecutor(jpeg=tiny_jpeg(1) + b"\0" * (11 * 2**20)), FakeClock()
    ) as bot:
        await fake.slash("imagine", {"prompt": "a very detailed map"})
        await _settle(fake, bot, 1)
        await fake.wait_for(lambda: any("MiB" in m["content"] for m in fake.channel_messages()))
        (note,) = [m for m in fake.channel_messages() if "upload limit" in m["content"]]
        assert note["content"].startswith(f"<@{ALICE}> image #")
        assert "11.0 MiB, over the 10 MiB upload limit" in note["content"]
        assert fake.posted_with_files() == []


class _BrokenCore:
    """A core whose style listing breaks in an unexpected way (not a TurbobotError)."""

    step_range = TURBO_STEPS  # read when the commands are registered

    def styles(self) -> list[StyleInfo]:
        raise RuntimeError("disk on fire")

    async def default_style(self, requester: object) -> str | None:
        return None


async def test_unexpected_errors_are_logged_once_without_secrets(
    settings: Settings, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = DiscordAdapter(_BrokenCore(), settings, guild_ready_timeout=0.05)  # type: ignore[arg-type]
    await adapter.start()
    try:
        with caplog.at_level(logging.INFO):
            log = await fake.slash("style", sub="list")
            texts = await _edited(fake, log, "Something went wrong")
    finally:
        await adapter.aclose()
    assert texts == [say("en-US", "went_wrong")]
    ours = [r for r in caplog.records if r.name.startswith("adapters.")]
    assert len(ours) == 1
    assert "style list failed" in ours[0].getMessage()
    assert ours[0].exc_info is not None
    assert "x.y.z" not in caplog.text
    assert log.token not in ours[0].getMessage()


async def test_queue_lists_jobs_and_cancels_a_waiting_one(
    settings: Settings, fake: FakeDiscord
) -> None:
    gate = asyncio.Event()
    executor = FakeExecutor(gate=gate)
    async with running_bot(settings, executor, FakeClock()) as bot:
        for prompt in ("first", "second"):
            log = await fake.slash("imagine", {"prompt": prompt})
            await _edited(fake, log, "Queued")
        await fake.wait_for(lambda: bool(executor.calls))
        running, waiting = executor.calls[0][0], executor.calls[0][0] + 1

        queue = await fake.slash("queue")
        text = (await _edited(fake, queue, "Your jobs"))[-1]
        assert f"`#{running}` running now" in text
        assert f"`#{waiting}` position 1" in text
        assert queue.original is not None
        cancel = await fake.click(int(queue.original["id"]), f"tb:cancel:{waiting}")
        await _edited(fake, cancel, f"Cancelled job #{waiting}")
        assert (await bot.core.job(waiting)).state == "cancelled"
        gate.set()
        await _settle(fake, bot, 1)
    assert len(executor.calls) == 1  # the cancelled job never ran
