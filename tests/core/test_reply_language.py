"""The one rule for the language of a reply (issue 16), and the store keeping "not chosen"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.domain import Language
from bot.i18n import reply_language
from bot.store import connect, migrate, open_store

VERSION_BEFORE = 4  # the last migration before a server could leave its language unchosen


@pytest.mark.parametrize(
    ("chosen", "client", "want"),
    [
        (Language.EN, "zh-CN", Language.EN),  # the server's choice wins over the client
        (Language.ZH, "en-US", Language.ZH),
        (None, "zh-CN", Language.ZH),  # no choice (or a DM): the user's own
        (None, "zh-hans", Language.ZH),  # Telegram's language_code
        (None, "en", Language.EN),
        (None, None, Language.EN),  # nothing known: English
    ],
)
def test_the_server_choice_else_the_client(
    chosen: Language | None, client: str | None, want: Language
) -> None:
    assert reply_language(chosen, client) is want


async def test_servers_keep_their_language_and_new_ones_choose_none(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = await connect(path)
    assert await migrate(db, upto=VERSION_BEFORE) == VERSION_BEFORE
    for server, language in (("g-zh", "zh"), ("g-en", "en")):
        await db.execute(
            "INSERT INTO server_settings (server_key, platform, server_id, language) "
            "VALUES (?, 'discord', ?, ?)",
            (f"discord:{server}", server, language),
        )
    await db.commit()
    await db.close()
    async with open_store(path):
        pass
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO server_settings (server_key, platform, server_id) "
            "VALUES ('discord:g-new', 'discord', 'g-new')"
        )
        rows = dict(raw.execute("SELECT server_id, language FROM server_settings").fetchall())
    assert rows == {"g-zh": "zh", "g-en": "en", "g-new": None}
