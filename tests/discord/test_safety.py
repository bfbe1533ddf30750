"""The image safety check (issue 14) through the real Discord adapter, over loopback: the
setting in /settings, a flagged image posted as a SPOILER_ attachment or withheld."""

from __future__ import annotations

from bot.domain import Platform, SafetyMode
from bot.i18n import msg
from tests.discord.conftest import Bot
from tests.discord.fake_discord import ALICE, BOB, GUILD_ID, JSON, FakeDiscord, InteractionLog

SERVER = str(GUILD_ID)


async def _set_safety(fake: FakeDiscord, mode: str) -> str:
    log = await fake.slash("settings", {"safety_check": mode}, sub="set", user=BOB, admin=True)
    await fake.wait_for(lambda: bool(log.edits))
    return log.texts()[-1]


async def _imagine(fake: FakeDiscord, bot: Bot) -> InteractionLog:
    log = await fake.slash("imagine", {"prompt": "a lighthouse at dusk"}, user=ALICE)
    await fake.wait_for(lambda: len(bot.executor.calls) >= 1)
    await bot.core.wait_until_idle(f"{Platform.DISCORD}:{ALICE}")
    return log


def _filenames(message: JSON) -> list[str]:
    return [a["filename"] for a in message["attachments"]]


async def test_the_setting_is_offered_saved_and_shown(fake: FakeDiscord, bot: Bot) -> None:
    (settings,) = [c for c in fake.commands[None] if c["name"] == "settings"]
    (set_,) = [o for o in settings["options"] if o["name"] == "set"]
    (option,) = [o for o in set_["options"] if o["name"] == "safety_check"]
    assert [c["value"] for c in option["choices"]] == ["off", "spoiler", "withhold"]
    reply = await _set_safety(fake, "spoiler")
    assert "Safety check: spoiler" in reply
    saved = await bot.core.server_settings(Platform.DISCORD, SERVER)
    assert saved.safety_check is SafetyMode.SPOILER


async def test_a_flagged_image_is_posted_as_a_spoiler(fake: FakeDiscord, bot: Bot) -> None:
    bot.executor.verdicts = [1.5]
    await _set_safety(fake, "spoiler")
    await _imagine(fake, bot)
    (message,) = fake.posted_with_files()
    job_id = bot.executor.calls[-1][0]
    assert _filenames(message) == [f"SPOILER_turbobot-{job_id}.jpg"]


async def test_a_clean_image_is_posted_without_spoiler(fake: FakeDiscord, bot: Bot) -> None:
    bot.executor.verdicts = [-1.5]
    await _set_safety(fake, "spoiler")
    await _imagine(fake, bot)
    (message,) = fake.posted_with_files()
    job_id = bot.executor.calls[-1][0]
    assert _filenames(message) == [f"turbobot-{job_id}.jpg"]


async def test_a_withheld_image_is_not_posted_and_the_user_is_told(
    fake: FakeDiscord, bot: Bot
) -> None:
    bot.executor.verdicts = [1.5]
    await _set_safety(fake, "withhold")
    log = await _imagine(fake, bot)
    job_id = bot.executor.calls[-1][0]
    withheld = str(msg("core.safety.withheld", job=job_id))
    await fake.wait_for(lambda: any(withheld in t for t in log.texts()))
    assert fake.posted_with_files() == []
