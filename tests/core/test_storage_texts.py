"""A storage failure says what could not be done in the chat's language (issue 16): the words
for "what" are catalogue messages too, not English inside a Chinese sentence."""

from __future__ import annotations

import errno
import re
import sqlite3

import pytest

from bot import texts
from bot.i18n import msg
from bot.store import storage_error

LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


@pytest.mark.parametrize(
    "err",
    [
        sqlite3.OperationalError("database is locked"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_storage_failure_is_chinese_through_and_through(err: BaseException) -> None:
    failure = storage_error(err, msg("core.op.save_settings"))
    assert "保存服务器设置" in failure.render("zh")
    assert not LATIN_WORD.search(failure.render("zh"))
    assert "could not save the server settings" in failure.render("en")


def test_a_refused_post_says_why_in_chinese() -> None:
    refused = texts.not_posted(msg("core.platform_refused"))
    assert not LATIN_WORD.search(refused.render("zh"))
    assert refused.render("en").endswith("(the chat platform refused it).")
