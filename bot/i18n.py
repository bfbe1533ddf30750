"""The one bilingual catalogue of everything a user reads (replies, errors, buttons, help).

Texts live in standard gettext catalogues, ``bot/locale/<lang>/LC_MESSAGES/turbobot.po``,
read with Babel (no compile step, so a fresh clone and the wheel work alike). A ``msgid`` is a
stable key such as ``telegram.queued``, never the English text, so English can be reworded
without touching the code; templates use ``str.format`` fields (``{job}``), flagged
``python-brace-format`` in the ``.po`` files. A test checks that both languages have every key
with the same fields.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from babel.messages.pofile import read_po

from bot.domain import Language

DOMAIN = "turbobot"
LOCALE_DIR = Path(__file__).parent / "locale"


def po_path(lang: Language) -> Path:
    return LOCALE_DIR / lang.value / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def catalogue(lang: Language) -> Mapping[str, str]:
    """Key -> template for ``lang`` (read once, on first use)."""
    with po_path(lang).open("rb") as f:
        po = read_po(f, domain=DOMAIN)
    return MappingProxyType({str(m.id): str(m.string) for m in po if m.id and m.string})


def language_of(code: str | Language | None) -> Language:
    """A platform's locale (``zh-CN``, Telegram's ``zh-hans``, ``en-US``) -> our language."""
    return Language.ZH if str(code or "").lower().startswith("zh") else Language.EN


def reply_language(chosen: Language | None, client: str | Language | None) -> Language:
    """The one rule for the language of a reply, on every platform: the server's (group's)
    setting when it chose one, else the user's own client language (Discord's locale,
    Telegram's ``language_code``). In a DM there is no server, so ``chosen`` is None."""
    return chosen if chosen is not None else language_of(client)


def t(key: str, lang: Language | str | None = Language.EN, /, **params: object) -> str:
    """The text ``key`` in ``lang``, filled in; English when ``lang`` lacks it. Parameters that
    are :class:`Message` s (a failure's reason, "5 s") are rendered in ``lang`` too.

    An unknown key is a bug (a ``KeyError``), caught by the catalogue tests.
    """
    language = language_of(lang)
    template = catalogue(language).get(key)
    if template is None:
        template = catalogue(Language.EN)[key]
    return template.format(**{k: _in(language, v) for k, v in params.items()})


def _in(lang: Language, value: object) -> object:
    return value.render(lang) if isinstance(value, Message | Joined) else value


@dataclass(frozen=True, slots=True)
class Message:
    """A text not yet rendered: the core says *what*, the adapter picks the language."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, lang: Language | str | None = Language.EN) -> str:
        """The text in ``lang``; parameters that are messages themselves follow it."""
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render(Language.EN)


@dataclass(frozen=True, slots=True)
class Joined:
    """Several messages as one parameter (a list of refused styles, each with its reason),
    rendered in the language of the text they go into."""

    parts: tuple[Message, ...]
    separator: str = "; "

    def render(self, lang: Language | str | None = Language.EN) -> str:
        return self.separator.join(part.render(lang) for part in self.parts)


def msg(key: str, /, **params: object) -> Message:
    """``Message(key, params)``, written the way :func:`t` is called."""
    return Message(key, params)


# ----- over the wire (the GPU worker pool sends failures to the bot as JSON) -----


def to_wire(message: Message | str) -> dict[str, object] | str:
    """``message`` as JSON data: its key, its parameters (messages nested the same way) and
    the English text, for a bot whose catalogue lacks the key (an older or newer version)."""
    if not isinstance(message, Message):
        return message
    params = {k: to_wire(v) if isinstance(v, Message) else v for k, v in message.params.items()}
    return {"key": message.key, "params": params, "text": str(message)}


def from_wire(data: object) -> Message | str:
    """What :func:`to_wire` made, back as a message; anything this catalogue cannot render in
    full (an unknown key, a missing field) becomes the English text that came with it."""
    if not isinstance(data, dict):
        return str(data)
    key, params, text = data.get("key"), data.get("params"), data.get("text")
    fallback = str(text) if text is not None else str(data)
    if not isinstance(key, str) or not isinstance(params, dict):
        return fallback
    template = catalogue(Language.EN).get(key)
    if template is None:
        return fallback
    if not _fields(template) <= set(params):
        return fallback
    return Message(
        key, {str(k): from_wire(v) if isinstance(v, dict) else v for k, v in params.items()}
    )


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
