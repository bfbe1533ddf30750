"""One rule for the language of every Telegram reply (issue 16): the group's language setting
when the group chose one, else the user's ``language_code``; in a private chat the user's own.

Each case asks several kinds of reply — /queue, /privacy, /help and a core error (/show of a
job that does not exist) — and checks that all of them came back in the expected language.
Before the rule, /help followed the user while the others followed the group (English when
the group had chosen nothing).
"""

from __future__ import annotations

import pytest

from bot.domain import Platform
from tests.telegram.conftest import Harness
from tests.telegram.fake_botapi import command_message, user

GROUP = -100555
ADMIN = user(1, first_name="Root")
CJK = range(0x4E00, 0xA000)
ASKS = ("/queue", "/privacy", "/help", "/show 999999")


def chinese(text: str) -> bool:
    return any(ord(ch) in CJK for ch in text)


async def _reply(bot: Harness, text: str, sender: dict[str, object], chat: int) -> str:
    before = len(bot.api.calls_of("sendMessage"))
    await bot.api.push(command_message(text, from_user=sender, chat_id=chat))
    calls = await bot.api.wait_for("sendMessage", before + 1)
    return str(calls[before].params["text"])


@pytest.mark.parametrize(
    ("group", "client", "want_chinese"),
    [
        ("en", "zh-hans", False),  # a Chinese user in an English group reads English
        ("zh", "en", True),  # an English user in a Chinese group reads Chinese
        (None, "zh-hans", True),  # no group setting: the user's own language
        (None, "en", False),
    ],
)
async def test_every_group_reply_follows_one_language_rule(
    bot: Harness, group: str | None, client: str, want_chinese: bool
) -> None:
    bot.api.set_member(GROUP, ADMIN["id"], "administrator")
    if group is not None:
        await _reply(bot, f"/settings set language {group}", ADMIN, GROUP)
    chosen = (await bot.core.server_settings(Platform.TELEGRAM, str(GROUP))).language
    assert (chosen is None) == (group is None)
    sender = user(42, language_code=client)
    replies = {ask: chinese(await _reply(bot, ask, sender, GROUP)) for ask in ASKS}
    assert replies == dict.fromkeys(ASKS, want_chinese)


@pytest.mark.parametrize(("client", "want_chinese"), [("zh-hans", True), ("en", False)])
async def test_private_chats_follow_the_user(bot: Harness, client: str, want_chinese: bool) -> None:
    sender = user(42, language_code=client)
    replies = {ask: chinese(await _reply(bot, ask, sender, 42)) for ask in ASKS}
    assert replies == dict.fromkeys(ASKS, want_chinese)
