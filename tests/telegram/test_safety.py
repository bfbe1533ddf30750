"""The image safety check (issue 14) on Telegram end to end: real python-telegram-bot over
loopback against the fake Bot API: /settings safety, a flagged image sent with has_spoiler,
or withheld with a message."""

from __future__ import annotations

from bot.domain import Platform, SafetyMode
from bot.i18n import msg
from tests.telegram.conftest import Harness
from tests.telegram.fake_botapi import command_message
from tests.telegram.test_community import ADA, ADMIN, GROUP, imagine, say


async def _admin_sets(bot: Harness, mode: str) -> str:
    bot.api.set_member(GROUP, ADMIN["id"], "administrator")
    return await say(bot, f"/settings set safety {mode}", ADMIN)


async def test_admins_set_and_see_the_safety_check(bot: Harness) -> None:
    shown = await _admin_sets(bot, "withhold")
    assert "safety check: withhold" in shown
    saved = await bot.core.server_settings(Platform.TELEGRAM, str(GROUP))
    assert saved.safety_check is SafetyMode.WITHHOLD
    assert "off, spoiler or withhold" in await say(bot, "/settings set safety maybe", ADMIN)
    assert "safety check: operator default" in await say(bot, "/settings set safety none", ADMIN)


async def test_a_flagged_image_is_sent_with_has_spoiler(bot: Harness) -> None:
    bot.executor.verdicts = [2.0]
    await _admin_sets(bot, "spoiler")
    photo = await imagine(bot, "/imagine a lighthouse at dusk")
    assert photo.has_spoiler
    assert photo.result["has_media_spoiler"] is True


async def test_a_clean_image_is_sent_without_spoiler(bot: Harness) -> None:
    bot.executor.verdicts = [-2.0]
    await _admin_sets(bot, "spoiler")
    photo = await imagine(bot, "/imagine a lighthouse at dusk")
    assert not photo.has_spoiler


async def test_a_withheld_image_is_not_sent_and_the_user_is_told(bot: Harness) -> None:
    bot.executor.verdicts = [2.0]
    await _admin_sets(bot, "withhold")
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(command_message("/imagine a lighthouse", from_user=ADA, chat_id=GROUP))
    await bot.api.wait_for("sendMessage", before + 1)  # the status message: the job is queued
    await bot.core.wait_until_idle(f"telegram:{ADA['id']}")
    job_id = bot.executor.calls[-1][0]
    withheld = str(msg("core.safety.withheld", job=job_id))
    # The status message becomes the reason (the one Telegram call a failure makes here).
    (told,) = await bot.api.wait_for(
        "editMessageText", where=lambda c: withheld in str(c.params.get("text", ""))
    )
    assert told.params["chat_id"] == str(GROUP)
    assert bot.api.calls_of("sendPhoto") == []
