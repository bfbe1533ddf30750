"""What users read on Discord, from the one catalogue (:mod:`bot.i18n`).

Command names, descriptions and choice names are ``locale_str`` whose ``key`` extra names a
catalogue entry; Discord shows the Chinese text from :class:`Translator` to zh-CN clients.
Replies follow the core's one rule (:func:`bot.i18n.reply_language`): the server's language
when it chose one, else the user's client locale (always so in a DM).
"""

from __future__ import annotations

from discord import Locale, app_commands

from bot.domain import Language
from bot.i18n import language_of, t


def is_chinese(locale: Locale | str) -> bool:
    return language_of(str(locale)) is Language.ZH


def say(locale: Locale | str, key: str, **values: object) -> str:
    """The reply ``discord.<key>`` in the user's language (Chinese for zh-*, English otherwise)."""
    return t(f"discord.{key}", str(locale), **values)


def help_text(locale: Locale | str) -> str:
    return t("discord.help", str(locale))


def command_text(key: str) -> app_commands.locale_str:
    """A command, option or choice text: English now, Chinese through :class:`Translator`."""
    return app_commands.locale_str(t(key), key=key)


class Translator(app_commands.Translator):
    """Gives Discord the Chinese names of commands, options and choices at sync time."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        if locale is not Locale.chinese or not isinstance(key, str):
            return None
        return t(key, Language.ZH)
