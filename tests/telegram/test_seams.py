"""Telegram seams (issues 15 and 17): limits the fake Bot API enforces like Telegram, forged
button data, /show, the showcase chat check and anonymous admins, over the real PTB and core."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from telegram.request import HTTPXRequest

from adapters.telegram import community_texts as ct
from adapters.telegram.texts import CAPTION_LIMIT, MESSAGE_LIMIT, utf16_len
from bot.domain import MAX_PROMPT_CHARS
from bot.i18n import t
from tests.telegram.conftest import Harness, make_settings, running_bot
from tests.telegram.fake_botapi import (
    BOT_USER,
    JSON,
    Call,
    FakeBotApi,
    command_message,
    sent_message,
    user,
)
from tests.telegram.test_community import (
    ADA,
    ADMIN,
    BLOCKED_PROMPT,
    BOB,
    GROUP,
    imagine,
    press,
    say,
    setup_group,
    share,
)

# 2,000 characters with emoji outside the BMP: 2,400 UTF-16 units, well over a caption.
LONG_PROMPT = ("a fox 🦊 in snow " * 200)[:MAX_PROMPT_CHARS].strip()
LONG_NAME = "Ada " + "🦊" * 60


def no_trouble(api: FakeBotApi, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing over a Telegram limit was sent, and nothing unexpected was logged."""
    assert api.refusals() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def fits_caption(call: Call) -> str:
    caption = str(call.params["caption"])
    assert utf16_len(caption) <= CAPTION_LIMIT
    return caption


async def private_reply(bot: Harness, text: str, sender: JSON = ADA) -> str:
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(command_message(text, from_user=sender))
    calls = await bot.api.wait_for("sendMessage", before + 1)
    return str(calls[before].params["text"])


# ----- limits: the fake refuses what Telegram refuses -----
async def test_the_fake_refuses_what_telegram_refuses(api: FakeBotApi) -> None:
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.error import BadRequest

    async with Bot("1:x", base_url=api.base_url) as bot:
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(1, "🦊" * 2049)  # 2,049 characters, 4,098 units
        with pytest.raises(BadRequest, match="caption is too long"):
            await bot.send_photo(1, photo="file-id", caption="x" * 1025)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]])
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await bot.send_message(1, "hi", reply_markup=keyboard)
        await bot.send_message(1, "🦊" * 2048)  # exactly 4,096 units: fine
        await bot.send_photo(1, photo="file-id", caption="x" * 1024)
    assert len(api.refusals()) == 3


async def test_a_long_prompt_is_posted_with_a_caption_that_fits(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    photo = await imagine(bot, f"/imagine {LONG_PROMPT} --seed 5", ADA)
    caption = fits_caption(photo)
    assert caption.startswith(LONG_PROMPT[:500])
    settings = caption.rsplit("\n", 1)[1]  # the settings line survives the cut
    assert settings.startswith("no style · seed 5 · 4 steps · 1:1 · ")
    assert settings.endswith(" · #1")
    no_trouble(bot.api, caplog)


async def test_showcase_and_remix_captions_keep_their_credit_within_the_limit(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_group(bot)
    ada = user(42, first_name=LONG_NAME)
    original = await imagine(bot, f"/imagine {LONG_PROMPT} --seed 9", ada)
    post = await share(bot, original, ada, "q-share")
    caption = fits_caption(post)
    assert caption.startswith(f"by {LONG_NAME}\na fox")
    assert caption.rsplit("\n", 1)[1].startswith("no style · seed 9 · 4 steps")
    before = len(bot.api.calls_of("sendPhoto"))
    await press(bot, "tb:remix:1", sent_message(post), BOB, "q-remix")
    remix = (await bot.api.wait_for("sendPhoto", before + 1))[before]
    await bot.core.wait_until_idle("telegram:43")
    assert fits_caption(remix).endswith(f"\nremix of #1 by {LONG_NAME}")
    no_trouble(bot.api, caplog)


async def test_every_text_the_bot_sends_is_fitted_in_one_place(
    api: FakeBotApi, tmp_path: Path
) -> None:
    """The application's bot shortens any text, whichever handler forgot to."""
    from adapters.telegram.adapter import build_application

    settings = make_settings(tmp_path, api.base_url)
    requests = (HTTPXRequest(), HTTPXRequest())
    app = build_application(settings, requests)
    async with app:
        message = await app.bot.send_message(1, "🦊" * 3000 + " end")
        photo = await app.bot.send_photo(1, photo="file-id", caption="\ud83d" + "x" * 2000)
        await app.bot.answer_callback_query("cq", text="y" * 500)
    assert api.refusals() == []
    assert MESSAGE_LIMIT - 2 <= utf16_len(message.text or "") <= MESSAGE_LIMIT
    assert (message.text or "").endswith("🦊…")
    assert utf16_len(photo.caption or "") == CAPTION_LIMIT
    assert (photo.caption or "").startswith("\ufffdxxx")  # a lone surrogate cannot be sent
    [answer] = api.calls_of("answerCallbackQuery")
    assert len(answer.params["text"]) <= 200


async def test_an_error_quoting_a_5000_character_style_arrives_shortened(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await private_reply(bot, "/imagine a fox --style " + "s" * 5000)
    assert answer.startswith("Unknown style 'sss")
    assert utf16_len(answer) <= MESSAGE_LIMIT
    assert bot.executor.calls == []
    no_trouble(bot.api, caplog)


async def test_prompt_at_the_limit_is_queued_and_one_over_is_refused(bot: Harness) -> None:
    photo = await imagine(bot, "/imagine " + "x" * MAX_PROMPT_CHARS, ADA)
    assert fits_caption(photo).startswith("x" * 900)
    answer = await private_reply(bot, "/imagine " + "x" * (MAX_PROMPT_CHARS + 1))
    assert f"the limit is {MAX_PROMPT_CHARS}" in answer
    assert len(bot.executor.calls) == 1


# ----- forged and stale button data -----
@pytest.mark.parametrize(
    "data",
    [
        "tb:reroll:12345678901234567890123",
        "tb:var:9999999999999999999",  # 19 digits, over SQLite's largest integer
        "tb:orig:123456789012345678901234567890",
        "tb:share:99999999999999999999",
        "tb:sp:-5",
        "tb:sp:123456789012345678901234567890",
        "tb:rsp:1:-1",
        "tb:gal:ra:123456789012345678901234567890",
        "tb:del:+1",
        "tb:cancel:١٢",  # Arabic-Indic digits: int() would take them
    ],
)
async def test_forged_numbers_in_buttons_get_a_clear_answer(
    bot: Harness, data: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = sent_message(await imagine(bot, "/imagine a quiet lake", ADA))
    answer = await press(bot, data, message, ADA, "q-forged")
    assert answer == t("telegram.stale_button")
    no_trouble(bot.api, caplog)


async def test_style_page_buttons_beyond_the_last_page_show_the_last(bot: Harness) -> None:
    await bot.api.push(command_message("/style", from_user=ADA))
    [picker] = await bot.api.wait_for("sendMessage")
    await press(bot, "tb:sp:7", sent_message(picker), ADA, "q-page")
    [edit] = await bot.api.wait_for("editMessageText")
    assert "(page 1 of 1)" in edit.params["text"]


# ----- /show -----
async def test_show_posts_an_earlier_image_again(bot: Harness) -> None:
    first = await imagine(bot, "/imagine a lighthouse --seed 4", ADA)
    before = len(bot.api.calls_of("sendPhoto"))
    await bot.api.push(command_message("/show 1", from_user=ADA))
    again = (await bot.api.wait_for("sendPhoto", before + 1))[before]
    assert again.params["photo"] == first.result["photo"][-1]["file_id"]  # no re-upload
    assert again.params["caption"] == first.params["caption"]
    assert again.params["chat_id"] == str(ADA["id"])

    usage = t("telegram.show_usage")
    assert await private_reply(bot, "/show") == usage
    assert await private_reply(bot, "/show 123456789012345678901234567890") == usage
    assert "no job #99" in (await private_reply(bot, "/show 99")).lower()


# ----- the showcase chat: the admin must administer it and the bot must post there -----
async def test_showcase_chat_must_be_administered_by_the_admin_and_postable(
    bot: Harness,
) -> None:
    bot.api.set_member(GROUP, ADMIN["id"], "administrator")
    other = -100888
    bot_id = int(BOT_USER["id"])
    # Not an admin over there: refused, whatever the bot may do.
    refused = await say(bot, f"/settings set showcase {other}", ADMIN)
    assert refused == ct.say("en", "showcase_not_admin", chat=str(other))
    # An admin there, but the bot was removed from it.
    bot.api.set_member(other, ADMIN["id"], "administrator")
    bot.api.set_member(other, bot_id, "left")
    assert "cannot post" in await say(bot, f"/settings set showcase {other}", ADMIN)
    # A channel where the bot is a subscriber, then an admin without "post messages".
    bot.api.channels.add(other)
    bot.api.set_member(other, bot_id, "member")
    assert "cannot post" in await say(bot, f"/settings set showcase {other}", ADMIN)
    bot.api.set_member(other, bot_id, "administrator", can_post_messages=False)
    assert "cannot post" in await say(bot, f"/settings set showcase {other}", ADMIN)
    # A chat Telegram does not know.
    bot.api.unknown_chats.add("@nosuchchat")
    assert "cannot see" in await say(bot, "/settings set showcase @nosuchchat", ADMIN)
    settings = await bot.core.server_settings(bot.adapter.platform, str(GROUP))
    assert settings.showcase_channel_id is None
    # Both rights present: saved.
    bot.api.set_member(other, bot_id, "administrator", can_post_messages=True)
    assert f"showcase chat: {other}" in await say(bot, f"/settings set showcase {other}", ADMIN)
    settings = await bot.core.server_settings(bot.adapter.platform, str(GROUP))
    assert settings.showcase_channel_id == str(other)


# ----- anonymous admins -----
def as_chat(text: str, sender_chat: JSON) -> JSON:
    """A group message sent on behalf of a chat (Telegram's placeholder user in ``from``)."""
    update = command_message(text, from_user=user(1087968824, first_name="Group"), chat_id=GROUP)
    update["message"]["sender_chat"] = sender_chat
    return update


async def test_a_message_sent_as_another_channel_gets_no_admin_rights(bot: Harness) -> None:
    bot.api.set_member(GROUP, 1087968824, "administrator")  # the placeholder must not count
    await bot.api.push(as_chat("/audit", {"id": -100999, "type": "channel", "title": "Mine"}))
    [answer] = await bot.api.wait_for(
        "sendMessage", where=lambda c: c.params["chat_id"] == str(GROUP)
    )
    assert answer.params["text"] == ct.say("en", "admins_only")


async def test_the_group_itself_as_sender_is_an_anonymous_admin(bot: Harness) -> None:
    sender = {"id": GROUP, "type": "supergroup", "title": "Test group"}
    await bot.api.push(as_chat("/audit", sender))
    [answer] = await bot.api.wait_for(
        "sendMessage", where=lambda c: c.params["chat_id"] == str(GROUP)
    )
    assert answer.params["text"] == ct.say("en", "audit_empty")


# ----- the operator's word filter also holds in private chats -----
async def test_operator_banned_words_apply_in_private_chats(
    api: FakeBotApi, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, api.base_url, TURBOBOT_BANNED_WORDS="grumbleweed")
    async with running_bot(api, tmp_path, settings=settings) as bot:
        answer = await private_reply(bot, "/imagine a GRUMBLEWEED field")
        assert answer == BLOCKED_PROMPT
        assert answer != t("telegram.something_wrong")
        assert bot.executor.calls == []
