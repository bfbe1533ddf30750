"""Pure text for the community features: settings, showcase posts, gallery, audit, privacy.

Credit is by display name, never a mention: a showcase post must not ping anybody, and a name
is escaped so that ``**`` or ``@everyone`` in it is shown as typed.
"""

from __future__ import annotations

import discord

from adapters.discord import format as fmt
from adapters.discord.texts import say
from bot.domain import AuditEntry, Credit, GalleryItem, Job, Language, ServerSettings, ShareTicket
from bot.i18n import t

GALLERY_PAGE_SIZE = 5
GALLERY_PROMPT_CHARS = 80


def plain_name(name: str) -> str:
    """A display name as literal text: no markdown, no mentions."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(name)) or t(
        "discord.someone"
    )


def details(job: Job, lang: Language | str) -> str:
    spec = job.spec
    style = spec.style or t("discord.style_none", lang)
    return t("discord.showcase.details", lang, style=style, seed=spec.seed, steps=spec.steps)


def showcase_caption(ticket: ShareTicket, lang: Language | str) -> str:
    """The text of a showcase post: credit, and the prompt and settings unless hidden."""
    job = ticket.job
    shared_by = t("discord.showcase.credit", lang, name=plain_name(ticket.credit_name), job=job.id)
    credit = f"-# {shared_by}"
    if not ticket.show_details:
        return credit
    prompt = fmt.shorten(job.spec.prompt, fmt.CAPTION_PROMPT_CHARS)
    return f"**{discord.utils.escape_markdown(prompt)}**\n{credit} · {details(job, lang)}"


def remix_credit(credit: Credit, lang: Language | str) -> str:
    name = plain_name(credit.name)
    return t("discord.remix_credit", lang, job=credit.job_id, name=name)


def gallery_text(
    items: list[GalleryItem],
    *,
    sort: str,
    period: str,
    page: int,
    locale: Language | str,
    link_of: dict[int, str],
) -> str:
    """One gallery page; ``link_of`` maps share ids to the post to open."""
    lines = [say(locale, "gallery_title", sort=sort, period=period, page=page)]
    start = (page - 1) * GALLERY_PAGE_SIZE
    for n, item in enumerate(items, start=start + 1):
        what = (
            f"**{fmt.shorten(item.job.spec.prompt, GALLERY_PROMPT_CHARS)}**"
            if item.show_details
            else say(locale, "details_hidden")
        )
        link = link_of.get(item.share_id)
        tail = f" · {link}" if link else ""
        lines.append(
            f"`{n}.` ⭐ {item.score} · {what} — {plain_name(item.credit_name)} · "
            f"#{item.job.id}{tail}"
        )
    return fmt.shorten_lines(lines)


def _value(value: object, lang: Language | str) -> str:
    if value is None:
        return t("discord.setting.default", lang)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) if value else t("discord.setting.all", lang)
    return str(value)


def _language(chosen: Language | None, lang: Language | str) -> str:
    return t("settings.language_own", lang) if chosen is None else str(chosen)


def settings_text(settings: ServerSettings, *, show_banned: bool, lang: Language | str) -> str:
    """The settings as an admin reads them back (banned words only for admins)."""
    channel = settings.showcase_channel_id
    none = t("discord.setting.none", lang)
    rows = [
        ("default_style", _value(settings.default_style, lang)),
        ("allowed_styles", _value(settings.allowed_styles, lang)),
        ("rate", _value(settings.rate_per_minute, lang)),
        ("burst", _value(settings.rate_burst, lang)),
        ("pending", _value(settings.max_pending_per_user, lang)),
        ("showcase", f"<#{channel}>" if channel else none),
        (
            "share_outside",
            t("discord.yes" if settings.allow_external_share else "discord.no", lang),
        ),
        ("language", _language(settings.language, lang)),
        ("safety", str(settings.safety_check or t("settings.safety_default", lang))),
    ]
    if show_banned:
        rows.append(("banned", ", ".join(f"`{w}`" for w in settings.banned_words) or none))
    return fmt.shorten_lines([t(f"discord.setting.{k}", lang, value=v) for k, v in rows])


def audit_text(entries: list[AuditEntry], locale: Language | str) -> str:
    if not entries:
        return say(locale, "audit_empty")
    lines = [say(locale, "audit_title")]
    for e in entries:
        detail = f" · {fmt.shorten(e.detail, 120)}" if e.detail else ""
        lines.append(
            f"`{e.id}` <t:{int(e.at)}:f> · <@{e.actor_user_id}> · **{e.action}** "
            f"{discord.utils.escape_markdown(e.target)}{detail}"
        )
    return fmt.shorten_lines(lines)
