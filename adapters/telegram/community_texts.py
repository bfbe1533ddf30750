"""What the Telegram adapter says for community features, in English and Chinese.

Community replies follow the group's language (``ServerSettings.language``); in a private chat
the user's Telegram language. Every message has both texts (checked by a test), so a missing
translation is a test failure rather than a ``KeyError`` in a handler.
"""

# Chinese texts use full-width punctuation on purpose; ruff takes it for confusables.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime

from adapters.telegram.texts import MESSAGE_LIMIT, details_line, is_chinese, shorten, utf16_len
from bot.domain import (
    AuditEntry,
    Credit,
    GalleryItem,
    ServerSettings,
    ShareTicket,
    UserPrivacy,
)

EN = "en"
ZH = "zh"

_EN: dict[str, str] = {
    "groups_only": "This command works in groups only.",
    "admins_only": "Only the group's admins can do this.",
    "settings_usage": (
        "Usage: /settings — show; /settings set <key> <value>.\n"
        "Keys: default_style, allowed_styles (comma list or all), rate (per minute), burst, "
        "pending, showcase (a chat id, here or none), banned (comma list or none), "
        "share_outside on|off, language en|zh. Use none to go back to the default."
    ),
    "settings_unknown_key": "Unknown setting {key!r}. Keys: {keys}.",
    "settings_bad_value": "{key} needs {what}.",
    "settings_title": "Settings of this group:",
    "settings_changed": "Saved. Settings of this group:",
    "default": "default",
    "all": "all",
    "none": "none",
    "on": "on",
    "off": "off",
    "k_default_style": "default style",
    "k_allowed_styles": "allowed styles",
    "k_rate": "rate per minute",
    "k_burst": "burst",
    "k_pending": "pending jobs per user",
    "k_showcase": "showcase chat",
    "k_banned": "banned words",
    "k_share_outside": "share outside",
    "k_language": "language",
    "shared": "Shared to the showcase.",
    "remix": "Remix",
    "by": "by {name}",
    "remix_of": "remix of #{job} by {name}",
    "voted": "You liked it ({score}).",
    "unvoted": "Your like is removed ({score}).",
    "gallery_empty": "Nothing in this group's gallery yet. Share an image with 🏆 Showcase.",
    "gallery_title": "{what} of this group{period} — page {page}:",
    "gallery_recent": "Recent images",
    "gallery_top": "Top images",
    "period_week": " this week",
    "period_month": " this month",
    "period_all": "",
    "gallery_usage": "Usage: /gallery [top] [week|month]",
    "prev": "◀ Newer",
    "next": "Older ▶",
    "prev_top": "◀ Better",
    "next_top": "Next ▶",
    "hidden": "(details hidden)",
    "privacy_state": (
        "Sharing of your images: {share}.\nPrompt, style and seed on shares: {details}.\n"
        "Change with /privacy optout on|off and /privacy hide on|off; /forget deletes everything."
    ),
    "share_allowed": "allowed",
    "share_opted_out": "opted out (never in galleries or the showcase)",
    "details_shown": "shown",
    "details_hidden": "hidden",
    "privacy_usage": "Usage: /privacy [optout on|off] [hide on|off]",
    "forget_confirm": (
        "This deletes all your images and everything this bot keeps about you. It cannot be undone."
    ),
    "forget_yes": "Delete everything",
    "forget_no": "Keep",
    "forget_done": "Done: {count} images and everything about you are deleted.",
    "forget_kept": "Nothing was deleted.",
    "not_yours": "This button is for someone else.",
    "block_usage": "Reply to a message of the user with /{command}, or give a user id.",
    "blocked": "User {user} is blocked from this bot in this group.",
    "unblocked": "User {user} may use this bot in this group again.",
    "audit_empty": "The audit log of this group is empty.",
    "audit_title": "Audit log (newest first):",
    "showcase_not_admin": "You can only choose a showcase chat that you administer ({chat}).",
    "showcase_bot_cannot_post": "I cannot post in {chat}: add me there (as an admin of a channel)"
    " and try again.",
    "showcase_unknown": "I cannot see the chat {chat}: check the id, and add me there first.",
}

_ZH: dict[str, str] = {
    "groups_only": "此命令只能在群组中使用。",
    "admins_only": "只有群管理员可以这样做。",
    "settings_usage": (
        "用法：/settings 查看；/settings set <项> <值>。\n"
        "可设置项：default_style、allowed_styles（逗号分隔或 all）、rate（每分钟）、burst、"
        "pending、showcase（聊天 id、here 或 none）、banned（逗号分隔或 none）、"
        "share_outside on|off、language en|zh。值为 none 时恢复默认。"
    ),
    "settings_unknown_key": "未知设置项 {key!r}。可设置项：{keys}。",
    "settings_bad_value": "{key} 需要{what}。",
    "settings_title": "本群设置：",
    "settings_changed": "已保存。本群设置：",
    "default": "默认",
    "all": "全部",
    "none": "无",
    "on": "开",
    "off": "关",
    "k_default_style": "默认风格",
    "k_allowed_styles": "允许的风格",
    "k_rate": "每分钟次数",
    "k_burst": "突发次数",
    "k_pending": "每人排队上限",
    "k_showcase": "展示频道",
    "k_banned": "屏蔽词",
    "k_share_outside": "允许分享到群外",
    "k_language": "语言",
    "shared": "已分享到展示频道。",
    "remix": "改编",
    "by": "作者：{name}",
    "remix_of": "改编自 {name} 的 #{job}",
    "voted": "已点赞（{score}）。",
    "unvoted": "已取消点赞（{score}）。",
    "gallery_empty": "本群画廊还是空的。用 🏆 展示 按钮分享图片吧。",
    "gallery_title": "本群{period}{what} — 第 {page} 页：",
    "gallery_recent": "最新图片",
    "gallery_top": "最佳图片",
    "period_week": "本周",
    "period_month": "本月",
    "period_all": "",
    "gallery_usage": "用法：/gallery [top] [week|month]",
    "prev": "◀ 较新",
    "next": "较早 ▶",
    "prev_top": "◀ 上一页",
    "next_top": "下一页 ▶",
    "hidden": "（细节已隐藏）",
    "privacy_state": (
        "你的图片分享：{share}。\n分享时显示描述、风格和种子：{details}。\n"
        "用 /privacy optout on|off 和 /privacy hide on|off 修改；/forget 删除全部数据。"
    ),
    "share_allowed": "允许",
    "share_opted_out": "已退出（不会出现在画廊或展示频道）",
    "details_shown": "显示",
    "details_hidden": "隐藏",
    "privacy_usage": "用法：/privacy [optout on|off] [hide on|off]",
    "forget_confirm": "这将删除你的所有图片以及本机器人保存的关于你的一切，且无法恢复。",
    "forget_yes": "全部删除",
    "forget_no": "保留",
    "forget_done": "完成：已删除 {count} 张图片以及关于你的所有数据。",
    "forget_kept": "没有删除任何内容。",
    "not_yours": "这个按钮不是给你的。",
    "block_usage": "请回复该用户的消息并发送 /{command}，或提供用户 id。",
    "blocked": "用户 {user} 已被禁止在本群使用本机器人。",
    "unblocked": "用户 {user} 可以在本群重新使用本机器人。",
    "audit_empty": "本群的审计日志为空。",
    "audit_title": "审计日志（最新在前）：",
    "showcase_not_admin": "只能选择你担任管理员的聊天作为展示频道（{chat}）。",
    "showcase_bot_cannot_post": "我无法在 {chat} 发帖："
    "请先把我加进去（频道需设为管理员），然后重试。",
    "showcase_unknown": "我看不到聊天 {chat}：请检查 id，并先把我加进去。",
}

_TEXTS = {EN: _EN, ZH: _ZH}


def lang_of(language_code: str | None) -> str:
    """A Telegram user's ``language_code`` → ``"en"`` or ``"zh"``."""
    return ZH if is_chinese(language_code) else EN


def say(lang: str, key: str, /, **values: object) -> str:
    """The text ``key`` in ``lang`` (English when the language is unknown), filled in."""
    table = _TEXTS.get(str(lang), _EN)
    return table[key].format(**values)


def keys() -> dict[str, set[str]]:
    """Every language's message keys (for the completeness test)."""
    return {lang: set(table) for lang, table in _TEXTS.items()}


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
        ("k_language", str(s.language)),
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
    details = details_line(ticket.job)
    head = f"{credit}\n"
    budget = limit - utf16_len(head) - utf16_len(details) - 1
    return f"{head}{shorten(ticket.job.spec.prompt, max(budget, 1))}\n{details}"


def remix_credit(lang: str, credit: Credit) -> str:
    return say(lang, "remix_of", job=credit.job_id, name=credit.name)


def gallery_title(lang: str, sort: str, period: str, page: int) -> str:
    what = say(lang, "gallery_top" if sort == "top" else "gallery_recent")
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
