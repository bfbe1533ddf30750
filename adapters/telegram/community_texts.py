"""What the Telegram adapter says for community features (texts from :mod:`bot.i18n`).

Replies follow the core's one rule (:func:`bot.i18n.reply_language`): the group's language when
it chose one, else the user's Telegram ``language_code`` (always so in a private chat). Every
key has both texts (checked by the catalogue test), so a missing translation is a test failure
rather than a ``KeyError`` in a handler.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.telegram.texts import MESSAGE_LIMIT, details_line, shorten, utf16_len
from bot.domain import (
    AuditEntry,
    Credit,
    GalleryItem,
    Language,
    ServerSettings,
    ShareTicket,
    UserPrivacy,
)
from bot.i18n import language_of, t

EN = Language.EN
ZH = Language.ZH


def lang_of(language_code: str | None) -> Language:
    """A Telegram user's ``language_code`` → our language (Chinese for zh-*, else English)."""
    return language_of(language_code)


def say(lang: str, key: str, /, **values: object) -> str:
    """The text ``telegram.<key>`` in ``lang`` (English when the language is unknown)."""
    return t(f"telegram.{key}", lang, **values)


# ----- settings -----
def _words(lang: str, items: tuple[str, ...], empty: str) -> str:
    return ", ".join(items) if items else say(lang, empty)


def _number(lang: str, value: float | None) -> str:
    if value is None:
        return say(lang, "default")
    return f"{value:g}"


def settings(lang: str, s: ServerSettings, *, changed: bool = False) -> str:
    rows = [
        ("k_default_style", s.default_style or say(lang, "none")),
        ("k_allowed_styles", _words(lang, s.allowed_styles, "all")),
        ("k_rate", _number(lang, s.rate_per_minute)),
        ("k_burst", _number(lang, s.rate_burst)),
        ("k_pending", _number(lang, s.max_pending_per_user)),
        ("k_showcase", s.showcase_channel_id or say(lang, "none")),
        ("k_banned", _words(lang, s.banned_words, "none")),
        ("k_share_outside", say(lang, "on" if s.allow_external_share else "off")),
        ("k_language", t("settings.language_own", lang) if s.language is None else str(s.language)),
        ("k_safety", str(s.safety_check or t("settings.safety_default", lang))),
    ]
    head = say(lang, "settings_changed" if changed else "settings_title")
    body = "\n".join(f"• {say(lang, k)}: {v}" for k, v in rows)
    return shorten(f"{head}\n{body}", MESSAGE_LIMIT)


# ----- sharing, remix, gallery -----
def showcase_caption(lang: str, ticket: ShareTicket, limit: int) -> str:
    """Credit first, then (unless the requester hides them) prompt, style and seed."""
    credit = say(lang, "by", name=ticket.credit_name)
    if not ticket.show_details:
        return shorten(f"{credit} · #{ticket.job.id}", limit)
    details = details_line(ticket.job, lang)
    head = f"{credit}\n"
    budget = limit - utf16_len(head) - utf16_len(details) - 1
    return f"{head}{shorten(ticket.job.spec.prompt, max(budget, 1))}\n{details}"


def remix_credit(lang: str, credit: Credit) -> str:
    return say(lang, "remix_of", job=credit.job_id, name=credit.name)


def gallery_title(lang: str, sort: str, period: str, page: int) -> str:
    what = say(lang, "gallery_top" if sort == "top" else "gallery_recent")
    if period == "all":
        return say(lang, "gallery_title_all", what=what, page=page + 1)
    return say(
        lang, "gallery_title", what=what, period=say(lang, f"period_{period}"), page=page + 1
    )


def gallery_line(lang: str, rank: int, item: GalleryItem, link: str | None) -> str:
    if item.show_details:
        about = shorten(" ".join(item.job.spec.prompt.split()), 60)
    else:
        about = say(lang, "hidden")
    where = f"\n   {link}" if link else ""
    name = item.credit_name
    return f"{rank}. 👍 {item.score} · #{item.job.id} · {name} — {about}{where}"


def gallery(lang: str, sort: str, period: str, page: int, lines: list[str]) -> str:
    if not lines:
        return say(lang, "gallery_empty")
    return shorten(gallery_title(lang, sort, period, page) + "\n" + "\n".join(lines), MESSAGE_LIMIT)


# ----- privacy and moderation -----
def privacy(lang: str, p: UserPrivacy) -> str:
    return say(
        lang,
        "privacy_state",
        share=say(lang, "share_opted_out" if p.share_opt_out else "share_allowed"),
        details=say(lang, "details_hidden" if p.hide_details else "details_shown"),
    )


def audit(lang: str, entries: list[AuditEntry]) -> str:
    if not entries:
        return say(lang, "audit_empty")
    lines = [
        f"{datetime.fromtimestamp(e.at, UTC):%Y-%m-%d %H:%M} · {e.actor_user_id} · {e.action}"
        f" · {e.target}" + (f" · {shorten(e.detail, 80)}" if e.detail else "")
        for e in entries
    ]
    return shorten(say(lang, "audit_title") + "\n" + "\n".join(lines), MESSAGE_LIMIT)


def message_link(chat_id: str | None, message_id: str | None) -> str | None:
    """A t.me link to a post in a supergroup/channel (basic groups have none)."""
    if chat_id is None or message_id is None:
        return None
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    if chat_id.startswith("@"):
        return f"https://t.me/{chat_id[1:]}/{message_id}"
    return None
