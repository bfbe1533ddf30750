"""What the Telegram adapter says: captions, status lines, help, command menus (en + zh).

Telegram measures text in UTF-16 code units (an emoji outside the BMP counts two), so every
limit here is checked with :func:`utf16_len`, and text is shortened only between whole
characters — never inside a surrogate pair, a combining sequence or a ZWJ emoji.
"""

# Chinese texts use full-width punctuation on purpose; ruff takes it for confusables.
# ruff: noqa: RUF001

from __future__ import annotations

import math
import unicodedata

from bot.domain import Job, JobState, StyleInfo, Ticket

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
CALLBACK_ANSWER_LIMIT = 200
ELLIPSIS = "\u2026"
_ZWJ = "\u200d"

COMMANDS_EN: tuple[tuple[str, str], ...] = (
    ("imagine", "Make an image: /imagine <prompt> [--style S --seed N --aspect 16:9]"),
    ("style", "Choose your default style"),
    ("history", "Your recent images"),
    ("queue", "Your waiting jobs"),
    ("cancel", "Cancel a waiting job: /cancel [id]"),
    ("gallery", "This group's shared images: /gallery [top] [week|month]"),
    ("privacy", "Sharing and privacy: /privacy [optout on|off] [hide on|off]"),
    ("forget", "Delete all your images and data"),
    ("help", "How to use this bot"),
    ("start", "Start"),
)
# Group admins see these too (Telegram's "all chat administrators" command scope).
ADMIN_COMMANDS_EN: tuple[tuple[str, str], ...] = (
    ("settings", "Group settings: /settings [set <key> <value>]"),
    ("block", "Block a user from the bot here (reply to their message)"),
    ("unblock", "Unblock a user (reply to their message)"),
    ("audit", "Moderation log of this group"),
)
COMMANDS_ZH: tuple[tuple[str, str], ...] = (
    ("imagine", "生成图片：/imagine <描述> [--style 风格 --seed 数字 --aspect 16:9]"),
    ("style", "选择默认风格"),
    ("history", "最近的图片"),
    ("queue", "排队中的任务"),
    ("cancel", "取消排队任务：/cancel [编号]"),
    ("gallery", "本群分享的图片：/gallery [top] [week|month]"),
    ("privacy", "分享与隐私：/privacy [optout on|off] [hide on|off]"),
    ("forget", "删除你的所有图片和数据"),
    ("help", "使用说明"),
    ("start", "开始"),
)
ADMIN_COMMANDS_ZH: tuple[tuple[str, str], ...] = (
    ("settings", "群设置：/settings [set <项> <值>]"),
    ("block", "禁止某用户在本群使用机器人（回复其消息）"),
    ("unblock", "解除禁止（回复其消息）"),
    ("audit", "本群的管理日志"),
)

HELP_EN = """\
Send /imagine followed by a description, e.g.
/imagine a red fox in fresh snow, golden hour --aspect 16:9

Options: --style S, --seed N (same seed + prompt = same image), --steps 1-8, \
--aspect 1:1 | 16:9 | 9:16 | 4:3 | 3:4 | 3:2 | 2:3
Under each image: Reroll (new seed), Variations, Restyle, Share (inline, any chat), \
Original file (uncompressed JPEG), Delete.

/style — your default style
/history — your recent images
/queue — your waiting jobs, /cancel [id] to cancel
In groups: 🏆 Showcase posts an image to the group's showcase, where 👍 counts likes and \
Remix starts from it; /gallery [top] [week|month] lists them.
/privacy — opt out of sharing or hide your prompts; /forget — delete all your data
Group admins: /settings, /block, /unblock (reply to a message), /audit
In any chat, type @{bot} and a word of a prompt to share one of your images."""

HELP_ZH = """\
发送 /imagine 加上描述，例如：
/imagine 雪地里的红狐狸，黄昏光线 --aspect 16:9

选项：--style 风格，--seed 数字（相同种子和描述得到相同图片），--steps 1-8，\
--aspect 1:1 | 16:9 | 9:16 | 4:3 | 3:4 | 3:2 | 2:3
图片下方按钮：重新生成、变体、换风格、分享（任意聊天）、原图（无压缩 JPEG）、删除。

/style — 默认风格
/history — 最近的图片
/queue — 排队中的任务，/cancel [编号] 取消
群组中：🏆 展示 把图片发到本群的展示频道，👍 点赞，改编 以它为起点；\
/gallery [top] [week|month] 查看。
/privacy — 退出分享或隐藏描述；/forget — 删除你的全部数据
群管理员：/settings、/block、/unblock（回复消息）、/audit
在任意聊天中输入 @{bot} 加上描述中的词，即可分享你的图片。"""

INTAKE_CLOSED = "The bot is restarting and takes no new requests right now. Try again in a minute."
SOMETHING_WRONG = "Something went wrong on our side. It has been logged; please try again."
STALE_BUTTON = "This button is no longer valid."
IMAGINE_USAGE = "Usage: /imagine <prompt> [--style S] [--seed N] [--steps N] [--aspect 16:9]"


def is_chinese(language_code: str | None) -> bool:
    return bool(language_code) and str(language_code).lower().startswith("zh")


def help_text(language_code: str | None, bot_username: str) -> str:
    template = HELP_ZH if is_chinese(language_code) else HELP_EN
    return template.format(bot=bot_username)


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
def details_line(job: Job) -> str:
    spec = job.spec
    parts = [spec.style or "no style", f"seed {spec.seed}", f"{spec.steps} steps", spec.aspect]
    if job.timings is not None and job.timings.total_ms > 0:
        parts.append(f"{job.timings.total_ms / 1000:.1f} s")
    parts.append(f"#{job.id}")
    return " · ".join(parts)


def caption(job: Job, credit: str | None = None) -> str:
    """Prompt (shortened as needed) and the settings, within Telegram's 1024-unit caption;
    ``credit`` (a remix's "remix of #N by NAME") goes last."""
    details = details_line(job) if credit is None else f"{details_line(job)}\n{credit}"
    budget = CAPTION_LIMIT - utf16_len(details) - 1
    return f"{shorten(job.spec.prompt, budget)}\n{details}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    return f"{math.ceil(seconds / 60)} min"


def queued(ticket: Ticket) -> str:
    return (
        f"Queued #{ticket.job.id}: position {ticket.position}, "
        f"about {duration(ticket.eta_s)} until it starts."
    )


def generating(job: Job, step: int, total: int) -> str:
    return f"Generating #{job.id}: step {step} of {total}\u2026"


def failed(job: Job, reason: str) -> str:
    return shorten(f"Image #{job.id} failed: {reason}", MESSAGE_LIMIT)


def job_line(job: Job) -> str:
    prompt = shorten(" ".join(job.spec.prompt.split()), 60)
    style = job.spec.style or "no style"
    return f"#{job.id} · {job.state} · {style} · seed {job.spec.seed} — {prompt}"


def history(jobs: list[Job]) -> str:
    if not jobs:
        return "You have no images yet. Try /imagine a lighthouse in a storm"
    return shorten("Your recent images:\n" + "\n".join(job_line(j) for j in jobs), MESSAGE_LIMIT)


def queue(entries: list[tuple[Job, int]], eta: dict[int, float]) -> str:
    if not entries:
        return "You have no jobs waiting."
    lines = []
    for job, position in entries:
        where = (
            "running now"
            if position == 0 or job.state == JobState.RUNNING
            else f"position {position}, about {duration(eta.get(job.id, 0.0))}"
        )
        lines.append(f"#{job.id} — {where} — {shorten(job.spec.prompt, 40)}")
    return shorten("Your jobs:\n" + "\n".join(lines), MESSAGE_LIMIT)


def style_label(style: StyleInfo, language_code: str | None) -> str:
    return style.display_name_zh if is_chinese(language_code) else style.display_name


def style_picker(current: str | None, page: int, pages: int) -> str:
    now = current or "none"
    return f"Choose your default style (page {page + 1} of {pages}). Now: {now}."


def restyle_picker(job_id: int, page: int, pages: int) -> str:
    return f"Restyle #{job_id}: choose a style (page {page + 1} of {pages})."


def style_set(style: str | None) -> str:
    if style is None:
        return "Your default style is cleared: images use no style unless you pass --style."
    return f"Your default style is now {style}."


def no_styles() -> str:
    return "No styles are installed."
