"""What the Telegram adapter says: captions, status lines, help, command menus (en + zh).

Telegram measures text in UTF-16 code units (an emoji outside the BMP counts two), so every
limit here is checked with :func:`utf16_len`, and text is shortened only between whole
characters — never inside a surrogate pair, a combining sequence or a ZWJ emoji.
"""

from __future__ import annotations

import math
import unicodedata

from bot.domain import Job, JobState, Language, StyleInfo, Ticket
from bot.i18n import Message, language_of, t
from bot.texts import shown_prompt, state_word

Lang = Language | str | None  # a Language, or a Telegram language_code such as "zh-hans"

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
CALLBACK_ANSWER_LIMIT = 200
ELLIPSIS = "\u2026"
_ZWJ = "\u200d"

# The command menus, in this order; their descriptions are ``telegram.cmd.<name>``.
COMMANDS = (
    "imagine",
    "style",
    "history",
    "queue",
    "cancel",
    "show",
    "gallery",
    "privacy",
    "forget",
    "help",
    "start",
)
# Group admins see these too (Telegram's "all chat administrators" command scope).
ADMIN_COMMANDS = ("settings", "block", "unblock", "audit")


def menu(names: tuple[str, ...], lang: Lang) -> list[tuple[str, str]]:
    """(command, description) pairs for ``set_my_commands`` in ``lang``."""
    return [(name, t(f"telegram.cmd.{name}", lang)) for name in names]


def is_chinese(language_code: str | None) -> bool:
    return language_of(language_code) is Language.ZH


def help_text(language_code: str | None, bot_username: str) -> str:
    return t("telegram.help", language_code, bot=bot_username)


# ----- UTF-16 aware shortening -----
def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits ``limit`` UTF-16 units, else a prefix + "…" that fits, cut between
    whole characters (an emoji, a letter with its accents, a flag stay whole or go)."""
    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(ELLIPSIS)
    cut = 0
    units = 0
    for ch in text:
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > budget:
            break
        cut += 1
    cut = _cluster_start(text, cut)
    return text[:cut].rstrip() + ELLIPSIS


def _extends(ch: str) -> bool:
    """True when ``ch`` belongs to the character before it (accent, emoji modifier, joiner...)."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in {"Mn", "Me", "Mc"}
        or ch == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (text / emoji presentation)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tag sequences (subdivision flags)
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _cluster_start(text: str, cut: int) -> int:
    """Move ``cut`` left until it does not split a user-perceived character."""
    while 0 < cut < len(text):
        if _extends(text[cut]) or text[cut - 1] == _ZWJ:
            cut -= 1
        elif _is_regional(text[cut]) and _is_regional(text[cut - 1]) and _odd_run(text, cut):
            cut -= 1  # flags are pairs of regional indicators: keep the pair together
        else:
            break
    return cut


def _odd_run(text: str, end: int) -> bool:
    run = 0
    while end - run - 1 >= 0 and _is_regional(text[end - run - 1]):
        run += 1
    return run % 2 == 1


# ----- captions and status lines -----
def details_line(job: Job, lang: Lang) -> str:
    spec = job.spec
    parts = [
        spec.style or t("telegram.no_style", lang),
        t("telegram.seed", lang, seed=spec.seed),
        t("telegram.steps", lang, steps=spec.steps),
        spec.aspect,
    ]
    if job.timings is not None and job.timings.total_ms > 0:
        parts.append(f"{job.timings.total_ms / 1000:.1f} s")
    parts.append(f"#{job.id}")
    return " · ".join(parts)


def caption(job: Job, credit: str | None, lang: Lang) -> str:
    """Prompt (shortened as needed) and the settings, within Telegram's 1024-unit caption;
    ``credit`` (a remix's "remix of #N by NAME") goes last."""
    details = details_line(job, lang) if credit is None else f"{details_line(job, lang)}\n{credit}"
    budget = CAPTION_LIMIT - utf16_len(details) - 1
    return f"{shorten(shown_prompt(job, lang), budget)}\n{details}"


def duration(seconds: float, lang: Lang) -> str:
    if seconds < 90:
        return t("telegram.seconds", lang, n=max(1, math.ceil(seconds)))
    return t("telegram.minutes", lang, n=math.ceil(seconds / 60))


def queued(ticket: Ticket, lang: Lang) -> str:
    eta = duration(ticket.eta_s, lang)
    return t("telegram.queued", lang, job=ticket.job.id, position=ticket.position, eta=eta)


def generating(job: Job, step: int, total: int, lang: Lang) -> str:
    return t("telegram.generating", lang, job=job.id, step=step, total=total)


def failed(job: Job, reason: Message | str, lang: Lang) -> str:
    return shorten(t("telegram.failed", lang, job=job.id, reason=reason), MESSAGE_LIMIT)


def job_line(job: Job, lang: Lang) -> str:
    prompt = shorten(" ".join(shown_prompt(job, lang).split()), 60)
    style = job.spec.style or t("telegram.no_style", lang)
    return t(
        "telegram.job_line",
        lang,
        job=job.id,
        state=state_word(job.state),
        style=style,
        seed=job.spec.seed,
        prompt=prompt,
    )


def history(jobs: list[Job], lang: Lang) -> str:
    if not jobs:
        return t("telegram.history_empty", lang)
    lines = "\n".join(job_line(j, lang) for j in jobs)
    return shorten(f"{t('telegram.history_title', lang)}\n{lines}", MESSAGE_LIMIT)


def lineage(parents: list[Job], lang: Lang) -> str:
    """The jobs a result was made from, nearest first (/show)."""
    chain = "\n".join(f"\u2190 {job_line(j, lang)}" for j in parents)
    return shorten(t("telegram.lineage", lang, chain=chain), MESSAGE_LIMIT)


def queue(entries: list[tuple[Job, int]], eta: dict[int, float], lang: Lang) -> str:
    if not entries:
        return t("telegram.queue_empty", lang)
    lines = []
    for job, position in entries:
        where = (
            t("telegram.queue_running", lang)
            if position == 0 or job.state == JobState.RUNNING
            else t(
                "telegram.queue_position",
                lang,
                position=position,
                eta=duration(eta.get(job.id, 0.0), lang),
            )
        )
        lines.append(f"#{job.id} — {where} — {shorten(shown_prompt(job, lang), 40)}")
    return shorten(t("telegram.queue_title", lang) + "\n" + "\n".join(lines), MESSAGE_LIMIT)


def style_label(style: StyleInfo, language_code: str | None) -> str:
    return style.display_name_zh if is_chinese(language_code) else style.display_name


def style_picker(current: str | None, page: int, pages: int, lang: Lang) -> str:
    now = current or t("telegram.style_none", lang)
    return t("telegram.style_picker", lang, page=page + 1, pages=pages, now=now)


def restyle_picker(job_id: int, page: int, pages: int, lang: Lang) -> str:
    return t("telegram.restyle_picker", lang, job=job_id, page=page + 1, pages=pages)


def style_set(style: str | None, lang: Lang) -> str:
    if style is None:
        return t("telegram.style_cleared", lang)
    return t("telegram.style_set", lang, style=style)


def no_image(job_id: int, lang: Lang) -> str:
    return t("telegram.no_image", lang, job=job_id)


def no_styles(lang: Lang) -> str:
    return t("telegram.no_styles", lang)
