"""One rule for the language of every Discord reply (issue 16): the server's language setting
when the server chose one, else the user's client locale.

Each case asks several kinds of reply — a plain command (/queue), a community command
(/privacy), /help and a core error (/show of a job that does not exist) — and checks that all
of them came back in the same, expected language. Before the rule, the first and the last
followed the client while the others followed the server.
"""

from __future__ import annotations

import pytest

from bot.domain import Platform
from tests.discord.conftest import Bot
from tests.discord.fake_discord import BOB, GUILD_ID, FakeDiscord, InteractionLog

CJK = range(0x4E00, 0xA000)


def chinese(text: str) -> bool:
    return any(ord(ch) in CJK for ch in text)


async def _answer(fake: FakeDiscord, log: InteractionLog) -> str:
    await fake.wait_for(lambda: any(t.strip() for t in log.texts()))
    return log.texts()[-1]


async def _replies(fake: FakeDiscord, locale: str) -> dict[str, bool]:
    """Whether each kind of reply came back in Chinese, for a user with ``locale``."""
    asks = {
        "queue": await fake.slash("queue", locale=locale),
        "privacy": await fake.slash("privacy", locale=locale),
        "help": await fake.slash("help", locale=locale),
        "error": await fake.slash("show", {"job": 999_999}, locale=locale),
    }
    return {kind: chinese(await _answer(fake, log)) for kind, log in asks.items()}


async def _set_language(fake: FakeDiscord, language: str) -> None:
    log = await fake.slash("settings", {"language": language}, sub="set", user=BOB, admin=True)
    await fake.wait_for(lambda: bool(log.edits))


@pytest.mark.parametrize(
    ("server", "client", "want_chinese"),
    [
        ("en", "zh-CN", False),  # a Chinese client in an English server reads English
        ("zh", "en-US", True),  # an English client in a Chinese server reads Chinese
        (None, "zh-CN", True),  # no server setting: the user's own locale
        (None, "en-US", False),
    ],
)
async def test_every_reply_follows_one_language_rule(
    fake: FakeDiscord, bot: Bot, server: str | None, client: str, want_chinese: bool
) -> None:
    if server is not None:
        await _set_language(fake, server)
    chosen = (await bot.core.server_settings(Platform.DISCORD, str(GUILD_ID))).language
    assert (chosen is None) == (server is None)
    assert await _replies(fake, client) == dict.fromkeys(
        ("queue", "privacy", "help", "error"), want_chinese
    )
