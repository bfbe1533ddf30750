"""Pure translation from core objects to Discord text and back; no I/O, so easy to test."""

from __future__ import annotations

import math

from bot.domain import Job, Platform, Requester, StyleInfo

CAPTION_PROMPT_CHARS = 300  # the caption is a summary; /show and Info give the full prompt
AUTOCOMPLETE_LIMIT = 25  # Discord's cap on autocomplete results
HISTORY_PAGE_SIZE = 10
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's default per-file limit
MESSAGE_LIMIT = 2000


def requester_of(
    user_id: int, display_name: str, channel_id: int | None, guild_id: int | None
) -> Requester:
    """The core's view of who asked: ids only, no discord objects."""
    return Requester(
        platform=Platform.DISCORD,
        user_id=str(user_id),
        display_name=display_name,
        channel_id=str(channel_id or ""),
        server_id=None if guild_id is None else str(guild_id),
    )


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def seconds(job: Job) -> float | None:
    if job.started_at is None or job.finished_at is None:
        return None
    return job.finished_at - job.started_at


def caption(job: Job, credit: str | None = None) -> str:
    """The text posted with an image: who asked, the prompt, and the settings to reproduce it.

    ``credit`` names the original of a remix (plain text: it must not ping its author).
    """
    spec = job.spec
    took = seconds(job)
    parts = [
        f"style {spec.style or 'none'}",
        f"seed {spec.seed}",
        f"{spec.steps} steps",
        spec.aspect,
    ]
    if took is not None:
        parts.append(f"{took:.1f} s")
    if credit:
        parts.append(credit)
    head = f"<@{job.requester.user_id}> **{shorten(spec.prompt, CAPTION_PROMPT_CHARS)}**"
    return f"{head}\n-# #{job.id} · " + " · ".join(parts)


def info_text(job: Job) -> str:
    """Everything about a job, for the Info button and /show."""
    spec = job.spec
    lines = [
        f"**Job #{job.id}** ({job.state})",
        f"Prompt: {shorten(spec.prompt, 1200)}",
        f"Style: {spec.style or 'none'} · seed {spec.seed} · {spec.steps} steps · "
        f"{spec.width}x{spec.height} · cfg {spec.cfg:g}",
    ]
    if spec.negative_prompt:
        lines.append(f"Negative: {shorten(spec.negative_prompt, 300)}")
    if job.parent_job_id is not None:
        lines.append(f"Derived from #{job.parent_job_id}")
    if job.timings is not None:
        t = job.timings
        lines.append(
            f"Timings: text {t.text_encode_ms:.0f} ms · denoise {t.denoise_ms:.0f} ms · "
            f"decode {t.decode_ms:.0f} ms · jpeg {t.jpeg_ms:.0f} ms · total {t.total_ms:.0f} ms"
        )
    took = seconds(job)
    if took is not None:
        lines.append(f"Run time: {took:.1f} s (attempts: {job.attempts})")
    return shorten_lines(lines)


def shorten_lines(lines: list[str]) -> str:
    text = "\n".join(lines)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


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
        return "No styles are installed."
    lines = [] if note is None else [note]
    for s in styles:
        label = s.display_name_zh if chinese and s.display_name_zh else s.display_name
        mark = " ✓" if s.name == default else ""
        lines.append(f"• **{label}** (`{s.name}`){mark} — {shorten(s.description, 120)}")
    return shorten_lines(lines)


def history_text(jobs: list[Job], page: int) -> str:
    lines = [f"**Your images, page {page}**"]
    for job in jobs:
        spec = job.spec
        lines.append(
            f"`#{job.id}` {job.state} · {shorten(spec.prompt, 60)} · "
            f"{spec.style or 'no style'} · seed {spec.seed} · {spec.steps} steps"
        )
    if len(jobs) == HISTORY_PAGE_SIZE:
        lines.append(f"-# More: /history page:{page + 1} · re-post one: /show job:<number>")
    return shorten_lines(lines)


def queue_text(entries: list[tuple[Job, int]]) -> str:
    lines = ["**Your jobs**"]
    for job, position in entries:
        where = "running now" if position == 0 else f"position {position}"
        lines.append(f"`#{job.id}` {where} · {shorten(job.spec.prompt, 80)}")
    return shorten_lines(lines)


def too_big(size: int, limit: int) -> tuple[str, str]:
    """(size, limit) in MiB for the too-big message."""
    return f"{size / 2**20:.1f}", f"{limit / 2**20:.0f}"


def message_link(guild_id: str | None, channel_id: str, message_id: str) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"
