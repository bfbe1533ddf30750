"""Pure translation from core objects to Discord text and back; no I/O, so easy to test."""

from __future__ import annotations

import math

import discord

from bot.domain import Job, JobKind, Language, Platform, Requester, StyleInfo, Timings
from bot.i18n import language_of, t
from bot.texts import shown_prompt, state_word

Lang = Language | str  # a Language, or a Discord locale such as "zh-CN"

CAPTION_PROMPT_CHARS = 300  # the caption is a summary; /show and Info give the full prompt
AUTOCOMPLETE_LIMIT = 25  # Discord's cap on autocomplete results
HISTORY_PAGE_SIZE = 10
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's default per-file limit
MESSAGE_LIMIT = 2000


def requester_of(
    user_id: int,
    display_name: str,
    channel_id: int | None,
    guild_id: int | None,
    locale: str | None = None,
) -> Requester:
    """The core's view of who asked: ids only, no discord objects; ``locale`` is the user's
    client locale (``zh-CN``), kept with their jobs as one of the catalogue's languages."""
    return Requester(
        platform=Platform.DISCORD,
        user_id=str(user_id),
        display_name=display_name,
        channel_id=str(channel_id or ""),
        server_id=None if guild_id is None else str(guild_id),
        language=None if locale is None else language_of(locale),
    )


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fit_text(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Every message the adapter sends or edits passes here: Discord refuses content over
    2,000 characters (400, "Invalid Form Body"), so a long text is cut, its line breaks kept."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def literal(text: str) -> str:
    """User text shown as typed: no markdown (a masked link, ``**``) and no mentions."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def seconds(job: Job) -> float | None:
    if job.started_at is None or job.finished_at is None:
        return None
    return job.finished_at - job.started_at


def caption(job: Job, credit: str | None, lang: Lang) -> str:
    """The text posted with an image: who asked, the prompt, and the settings to reproduce it.

    ``credit`` names the original of a remix (plain text: it must not ping its author).
    """
    spec = job.spec
    took = seconds(job)
    parts = [
        t("discord.caption.style", lang, style=spec.style or t("discord.style_none", lang)),
        t("discord.caption.seed", lang, seed=spec.seed),
        t("discord.caption.steps", lang, steps=spec.steps),
        spec.aspect,
    ]
    if took is not None:
        parts.append(f"{took:.1f} s")
    if credit:
        parts.append(credit)
    prompt = literal(shorten(shown_prompt(job, lang), CAPTION_PROMPT_CHARS))
    head = f"<@{job.requester.user_id}> **{prompt}**"
    return fit_text(f"{head}\n-# #{job.id} · " + " · ".join(parts))


def info_text(job: Job, lang: Lang) -> str:
    """Everything about a job, for the Info button and /show."""
    spec = job.spec
    lines = [
        t("discord.info.title", lang, job=job.id, state=state_word(job.state)),
        t("discord.info.prompt", lang, prompt=literal(shorten(shown_prompt(job, lang), 1200))),
        t(
            "discord.info.settings",
            lang,
            style=spec.style or t("discord.style_none", lang),
            seed=spec.seed,
            steps=spec.steps,
            width=spec.width,
            height=spec.height,
            cfg=f"{spec.cfg:g}",
        ),
    ]
    if spec.kind is not JobKind.TXT2IMG:  # made from an image: how, and how far from it
        kind = t(f"discord.kind.{spec.kind}", lang)
        strength = "-" if spec.strength is None else f"{spec.strength:g}"
        lines.append(t("discord.info.made_by", lang, kind=kind, strength=strength))
    if spec.negative_prompt:
        negative = literal(shorten(spec.negative_prompt, 300))
        lines.append(t("discord.info.negative", lang, negative=negative))
    if spec.enhance and job.text:  # the prompt above is the user's; the image used this one
        enhanced = literal(shorten(job.text, 600))
        lines.append(t("info.enhanced", lang, enhanced=enhanced))
    if job.parent_job_id is not None:
        lines.append(t("discord.info.parent", lang, job=job.parent_job_id))
    if job.timings is not None:
        lines.append(_timings_line(job.timings, lang))
    took = seconds(job)
    if took is not None:
        lines.append(t("discord.info.run_time", lang, seconds=f"{took:.1f}", attempts=job.attempts))
    return shorten_lines(lines)


def _timings_line(tm: Timings, lang: Lang) -> str:
    return t(
        "discord.info.timings",
        lang,
        text=f"{tm.text_encode_ms:.0f}",
        denoise=f"{tm.denoise_ms:.0f}",
        decode=f"{tm.decode_ms:.0f}",
        jpeg=f"{tm.jpeg_ms:.0f}",
        total=f"{tm.total_ms:.0f}",
    )


def shorten_lines(lines: list[str]) -> str:
    return fit_text("\n".join(lines))


def eta_text(eta_s: float) -> int:
    return max(1, math.ceil(eta_s))


def style_choices(styles: list[StyleInfo], typed: str, chinese: bool) -> list[tuple[str, str]]:
    """Autocomplete results as (label, value): matches on name, English or Chinese name."""
    needle = typed.strip().lower()
    out: list[tuple[str, str]] = []
    for s in styles:
        label = s.display_name_zh if chinese and s.display_name_zh else s.display_name
        haystack = f"{s.name} {s.display_name} {s.display_name_zh}".lower()
        if needle in haystack:
            out.append((shorten(f"{label} — {s.description}", 100), s.name))
        if len(out) == AUTOCOMPLETE_LIMIT:
            break
    return out


def styles_text(
    styles: list[StyleInfo], default: str | None, chinese: bool, note: str | None = None
) -> str:
    """One line per style; ``note`` (e.g. which previews are attached) goes first so a long
    list cut at Discord's 2000 characters never cuts it."""
    if not styles:
        return t("discord.no_styles", Language.ZH if chinese else Language.EN)
    return _style_lines(styles, default, chinese, note)


def _style_lines(
    styles: list[StyleInfo], default: str | None, chinese: bool, note: str | None
) -> str:
    lines = [] if note is None else [note]
    for s in styles:
        label = s.display_name_zh if chinese and s.display_name_zh else s.display_name
        mark = " ✓" if s.name == default else ""
        lines.append(f"• **{label}** (`{s.name}`){mark} — {shorten(s.description, 120)}")
    return shorten_lines(lines)


def history_text(jobs: list[Job], page: int, lang: Lang) -> str:
    lines = [t("discord.history.title", lang, page=page)]
    for job in jobs:
        spec = job.spec
        lines.append(
            t(
                "discord.history.line",
                lang,
                job=job.id,
                state=state_word(job.state),
                prompt=literal(shorten(shown_prompt(job, lang), 60)),
                style=spec.style or t("discord.no_style", lang),
                seed=spec.seed,
                steps=spec.steps,
            )
        )
    if len(jobs) == HISTORY_PAGE_SIZE:
        lines.append(t("discord.history.more", lang, page=page + 1))
    return shorten_lines(lines)


def queue_text(entries: list[tuple[Job, int]], lang: Lang) -> str:
    lines = [t("discord.queue.title", lang)]
    for job, position in entries:
        where = (
            t("discord.queue.running", lang)
            if position == 0
            else t("discord.queue.position", lang, position=position)
        )
        lines.append(f"`#{job.id}` {where} · {literal(shorten(shown_prompt(job, lang), 80))}")
    return shorten_lines(lines)


def too_big(size: int, limit: int) -> tuple[str, str]:
    """(size, limit) in MiB for the too-big message."""
    return f"{size / 2**20:.1f}", f"{limit / 2**20:.0f}"


def message_link(guild_id: str | None, channel_id: str, message_id: str) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


LINEAGE_PROMPT_CHARS = 60


def with_lineage(text: str, chain: list[Job], lang: Lang) -> str:
    """``text`` (a /show answer) and the jobs it was made from, nearest first (the core's
    lineage: it stops where the user may not see further)."""
    if not chain:
        return text
    lines = [text, t("discord.lineage.title", lang)]
    for job in chain:
        prompt = literal(shorten(shown_prompt(job, lang), LINEAGE_PROMPT_CHARS))
        kind = t(f"discord.kind.{job.spec.kind}", lang)
        lines.append(t("discord.lineage.line", lang, job=job.id, kind=kind, prompt=prompt))
    return shorten_lines(lines)
