"""The words typed after Telegram's community commands (``/settings set KEY VALUE``,
``/gallery top week``) read into the core's types. Parsing only: the core checks ranges,
style names and admin rights."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from adapters.telegram import community_texts as ct
from bot.domain import Language, SafetyMode, SettingsChange
from bot.errors import BadRequest

_CLEAR = {"none", "default", "clear", "-"}
_ON = {"on", "yes", "true", "1"}
_OFF = {"off", "no", "false", "0"}
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z0-9_]{5,32}")


def _bad(lang: str, key: str, what: str) -> BadRequest:
    return BadRequest(ct.say(lang, "settings_bad_value", key=key, what=what))


def switch(lang: str, key: str, value: str) -> bool:
    """``on`` / ``off`` (and yes/no, true/false, 1/0) as a bool."""
    word = value.lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    raise _bad(lang, key, ct.say(lang, "want_on_off"))


def _float(lang: str, key: str, value: str, _chat: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise _bad(lang, key, ct.say(lang, "want_number")) from None


def _int(lang: str, key: str, value: str, _chat: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _bad(lang, key, ct.say(lang, "want_whole_number")) from None


def _text(_lang: str, _key: str, value: str, _chat: str) -> str:
    return value


def _words(_lang: str, _key: str, value: str, _chat: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in value.split(",") if w.strip())


def _styles(lang: str, key: str, value: str, chat: str) -> tuple[str, ...]:
    return () if value.lower() == "all" else _words(lang, key, value, chat)


def _chat(lang: str, key: str, value: str, chat: str) -> str:
    target = chat if value.lower() == "here" else value
    if not _CHAT_ID.fullmatch(target):
        raise _bad(lang, key, ct.say(lang, "want_chat"))
    return target


def _on_off(lang: str, key: str, value: str, _chat: str) -> bool:
    return switch(lang, key, value)


def _safety(lang: str, key: str, value: str, _chat: str) -> SafetyMode:
    try:
        return SafetyMode(value.lower())
    except ValueError:
        raise _bad(lang, key, ct.say(lang, "want_safety")) from None


def _language(lang: str, key: str, value: str, _chat: str) -> Language:
    try:
        return Language(value.lower())
    except ValueError:
        raise _bad(lang, key, ct.say(lang, "want_language")) from None


# /settings key -> (SettingsChange field, parser of the typed value). Parsing only: the core
# checks ranges, style names and admin rights.
_SETTINGS: dict[str, tuple[str, Callable[[str, str, str, str], object]]] = {
    "default_style": ("default_style", _text),
    "allowed_styles": ("allowed_styles", _styles),
    "rate": ("rate_per_minute", _float),
    "burst": ("rate_burst", _int),
    "pending": ("max_pending_per_user", _int),
    "showcase": ("showcase_channel_id", _chat),
    "banned": ("banned_words", _words),
    "share_outside": ("allow_external_share", _on_off),
    "language": ("language", _language),
    "safety": ("safety_check", _safety),
}


def settings_change(lang: str, key: str, value: str, chat_id: str) -> SettingsChange:
    """The core's change for one ``/settings set`` (``none`` returns the key to its default)."""
    key = key.lower()
    if key not in _SETTINGS:
        keys = ", ".join(_SETTINGS)
        raise BadRequest(ct.say(lang, "settings_unknown_key", key=key, keys=keys))
    field, parse = _SETTINGS[key]
    if value.lower() in _CLEAR:
        return SettingsChange(clear=frozenset({field}))
    # By field name: one code path for every key (each parser returns that field's type).
    values: dict[str, Any] = {field: parse(lang, key, value, chat_id)}
    return SettingsChange(**values)


def gallery_view(words: list[str]) -> str:
    """``/gallery [top] [week|month]`` → the two-letter view code buttons carry ("tw", "ra")."""
    sort, period = "r", "a"
    for word in words:
        low = word.lower()
        if low in {"top", "best"}:
            sort = "t"
        elif low in {"recent", "new"}:
            sort = "r"
        elif low in {"week", "month", "all"}:
            period = low[0]
        else:
            raise ValueError(word)
    return sort + period
