"""Inline keyboards and their ``callback_data``.

Buttons carry only what identifies them — ``tb:<action>:<job id>`` and, for style pickers, a
page or a style — never settings: the rest is looked up in the core when pressed. So buttons
keep working after a restart, and ``callback_data`` stays within Telegram's 64 bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from adapters.telegram.texts import Lang, style_label
from bot.domain import Job, JobKind, StyleInfo
from bot.i18n import t

CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit
PREFIX = "tb"
STYLES_PER_PAGE = 8
_HASHED = "#"  # marks a style given by hash because its name is too long for callback_data
# Numbers in callback data come from the user's client and can be forged: ASCII digits only
# (``int()`` also takes "+5", "5_000" and other scripts' digits), within SQLite's integer range.
_NUMBER = re.compile(r"[0-9]{1,19}", re.ASCII)
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id would raise OverflowError there
MAX_PAGE = 10_000  # no picker or gallery has this many pages
MAX_IMAGE = 9  # no grid has more images (the core's cap is lower and checked there)


class Action(StrEnum):
    REROLL = "reroll"
    VARIATION = "var"
    RESTYLE = "restyle"  # opens the restyle picker for a job
    ORIGINAL = "orig"
    DELETE = "del"
    CANCEL = "cancel"
    RESTYLE_PAGE = "rsp"  # job id, page
    RESTYLE_PICK = "rs"  # job id, style
    STYLE_PAGE = "sp"  # page
    STYLE_PICK = "ss"  # style
    STYLE_CLEAR = "sc"
    SHARE = "share"  # post a job to the group's showcase
    VOTE = "vote"  # share id; toggles the presser's like
    REMIX = "remix"  # job id
    GALLERY = "gal"  # view ("t"/"r" + "w"/"m"/"a"), page
    FORGET = "forget"  # user id: confirms /forget
    KEEP = "keep"  # user id: cancels /forget
    # The iteration loop (issue 13): job id and, on a grid, the image (1-based, as U1..U4).
    PICK = "u"  # job id, image: that image alone, with its own buttons
    VARY_IMAGE = "v"  # job id, image: a grid's V k (a strong variation of image k)
    VARY_SUBTLE = "vs"  # job id
    VARY_STRONG = "vx"  # job id
    UPSCALE_SUBTLE = "us"  # job id
    UPSCALE_CREATIVE = "uc"  # job id
    REMIX_PROMPT = "rp"  # job id: asks for the edited prompt (ForceReply)
    ENHANCE = "enh"  # job id: the same image from an enhanced prompt
    DESCRIBED_IMAGINE = "dimg"  # describe job id: imagine its text
    DESCRIBED_EDIT = "dedit"  # describe job id: send its text back to edit (ForceReply)


@dataclass(frozen=True, slots=True)
class Callback:
    """A decoded button press."""

    action: Action
    args: tuple[str, ...]

    def int_arg(self, index: int) -> int:
        """A job or share id: ValueError (a stale or forged button) unless 0..MAX_ID."""
        return _number(self.args[index], MAX_ID)

    def image_arg(self, index: int) -> int:
        """An image of a grid (1-based; 1 when the button has none): ValueError unless
        1..MAX_IMAGE. The core checks it against the job's own count."""
        if index >= len(self.args):
            return 1
        image = _number(self.args[index], MAX_IMAGE)
        if image < 1:
            raise ValueError("images count from 1")
        return image

    def page_arg(self, index: int) -> int:
        """A page number: ValueError (a stale or forged button) unless 0..MAX_PAGE."""
        return _number(self.args[index], MAX_PAGE)


def _number(text: str, upper: int) -> int:
    if _NUMBER.fullmatch(text) is None or int(text) > upper:
        raise ValueError(f"not a number from 0 to {upper}: {text[:30]!r}")
    return int(text)


def encode(action: Action, *args: object) -> str:
    data = ":".join([PREFIX, action.value, *(str(a) for a in args)])
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"callback_data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return data


def decode(data: str | None) -> Callback | None:
    """The button's action, or None for data this bot did not make (or an older format)."""
    prefix, _, rest = (data or "").partition(":")
    name, _, tail = rest.partition(":")
    if prefix != PREFIX:
        return None
    try:
        action = Action(name)
    except ValueError:
        return None
    if not tail:
        return Callback(action, ())
    if action is Action.STYLE_PICK:
        return Callback(action, (tail,))  # a style name may itself contain ":"
    return Callback(action, tuple(tail.split(":", 1)))


def style_token(name: str, room: int) -> str:
    """The style's name if it fits in ``room`` bytes, else a stable short hash of it."""
    if len(name.encode()) <= room and not name.startswith(_HASHED):
        return name
    return _HASHED + hashlib.sha256(name.encode()).hexdigest()[:12]


def resolve_style(token: str, styles: list[StyleInfo]) -> str | None:
    """The style name a button's token stands for (None when it is gone)."""
    for style in styles:
        if token in {style.name, style_token(style.name, 0)}:
            return style.name
    return None


def _label(emoji: str, key: str, lang: Lang) -> str:
    return f"{emoji} {t(key, lang)}"


def result_keyboard(
    job: Job, *, showcase: bool = False, share_outside: bool = True, lang: Lang
) -> InlineKeyboardMarkup:
    """The buttons under a delivered image.

    ``showcase`` adds "post to the group's showcase" (group images); ``share_outside=False``
    (the group forbids it) drops the inline "share into any chat" button.
    """
    jid = job.id

    def button(emoji: str, key: str, action: Action) -> InlineKeyboardButton:
        return InlineKeyboardButton(_label(emoji, key, lang), callback_data=encode(action, jid))

    second = []
    if showcase:
        second.append(button("🏆", "button.showcase", Action.SHARE))
    if share_outside:
        share = _label("📤", "button.share", lang)
        second.append(InlineKeyboardButton(share, switch_inline_query=f"#{jid}"))
    second += [
        button("🖼", "button.original", Action.ORIGINAL),
        button("🗑", "button.delete", Action.DELETE),
    ]
    first = [
        button("🎲", "button.reroll", Action.REROLL),
        button("🔀", "button.variations", Action.VARIATION),
        button("🎨", "button.restyle", Action.RESTYLE),
        button("✨", "button.enhance", Action.ENHANCE),
    ]
    return InlineKeyboardMarkup([first, second, *_iteration_rows(job, lang)])


def _iteration_rows(job: Job, lang: Lang) -> list[list[InlineKeyboardButton]]:
    """Vary subtle / strong, Upscale subtle / creative and Remix of a one-image result (an
    upscale is not offered again for an upscale: it is already as large as the model goes)."""

    def button(emoji: str, key: str, action: Action) -> InlineKeyboardButton:
        return InlineKeyboardButton(_label(emoji, key, lang), callback_data=encode(action, job.id))

    vary = [
        button("🔅", "button.vary_subtle", Action.VARY_SUBTLE),
        button("🔆", "button.vary_strong", Action.VARY_STRONG),
    ]
    last = [button("✏️", "button.remix", Action.REMIX_PROMPT)]
    if job.spec.kind is not JobKind.UPSCALE:
        last[:0] = [
            button("🔍", "button.upscale_subtle", Action.UPSCALE_SUBTLE),
            button("🔎", "button.upscale_creative", Action.UPSCALE_CREATIVE),
        ]
    return [vary, last]


def grid_keyboard(job: Job, lang: Lang) -> InlineKeyboardMarkup:
    """Under a grid of ``job.spec.n`` images: U1..Un (that image alone), V1..Vn (a variation
    of it), then Reroll and Delete for the whole grid."""
    count = range(1, job.spec.n + 1)

    def button(key: str, action: Action, k: int) -> InlineKeyboardButton:
        return InlineKeyboardButton(t(key, lang, k=k), callback_data=encode(action, job.id, k))

    whole = [
        InlineKeyboardButton(_label(emoji, key, lang), callback_data=encode(action, job.id))
        for emoji, key, action in (
            ("🎲", "button.reroll", Action.REROLL),
            ("🗑", "button.delete", Action.DELETE),
        )
    ]
    return InlineKeyboardMarkup(
        [
            [button("button.pick", Action.PICK, k) for k in count],
            [button("button.vary_k", Action.VARY_IMAGE, k) for k in count],
            whole,
        ]
    )


def is_grid(job: Job) -> bool:
    """Posted as a grid of several images (with U/V buttons) rather than one image."""
    return job.spec.n > 1


# The buttons that name the job a reply is about: a grid's, a result's, a showcase post's.
_REPLY_TARGETS = frozenset({Action.PICK, Action.REMIX_PROMPT, Action.REMIX})


def job_of_markup(markup: InlineKeyboardMarkup | None) -> tuple[Action, int] | None:
    """(the first iteration button's action, its job id) under a result the bot posted, read
    back from its buttons: a reply to that result needs no other state, also after a restart."""
    for row in markup.inline_keyboard if markup is not None else ():
        for b in row:
            callback = decode(b.callback_data if isinstance(b.callback_data, str) else None)
            if callback is not None and callback.action in _REPLY_TARGETS:
                try:
                    return callback.action, callback.int_arg(0)
                except (ValueError, IndexError):
                    return None
    return None


def showcase_keyboard(share_id: int, job_id: int, score: int, remix: str) -> InlineKeyboardMarkup:
    """Under a showcase post: a like counter (toggles) and Remix."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(f"👍 {score}", callback_data=encode(Action.VOTE, share_id)),
                InlineKeyboardButton(f"🔁 {remix}", callback_data=encode(Action.REMIX, job_id)),
            ]
        ]
    )


def with_score(markup: InlineKeyboardMarkup | None, data: str, score: int) -> InlineKeyboardMarkup:
    """``markup`` with the like button ``data`` relabelled to ``score`` (other buttons kept)."""
    rows = markup.inline_keyboard if markup is not None else ()
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(f"👍 {score}", callback_data=data)
                if b.callback_data == data
                else b
                for b in row
            ]
            for row in rows
        ]
    )


def gallery_keyboard(
    view: str, page: int, has_next: bool, labels: tuple[str, str]
) -> InlineKeyboardMarkup | None:
    """Prev/next buttons for a gallery page (None when there is only one page)."""
    row = []
    if page > 0:
        row.append(
            InlineKeyboardButton(labels[0], callback_data=encode(Action.GALLERY, view, page - 1))
        )
    if has_next:
        row.append(
            InlineKeyboardButton(labels[1], callback_data=encode(Action.GALLERY, view, page + 1))
        )
    return InlineKeyboardMarkup([row]) if row else None


def forget_keyboard(user_id: str, labels: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(labels[0], callback_data=encode(Action.FORGET, user_id)),
                InlineKeyboardButton(labels[1], callback_data=encode(Action.KEEP, user_id)),
            ]
        ]
    )


def page_count(styles: list[StyleInfo]) -> int:
    return max(1, -(-len(styles) // STYLES_PER_PAGE))


def _page_slice(styles: list[StyleInfo], page: int) -> list[StyleInfo]:
    start = page * STYLES_PER_PAGE
    return styles[start : start + STYLES_PER_PAGE]


class _PageData:
    """callback_data for a page of a picker (the default-style one or a job's restyle one)."""

    def __init__(self, job_id: int | None) -> None:
        self.job_id = job_id

    def __call__(self, page: int) -> str:
        if self.job_id is None:
            return encode(Action.STYLE_PAGE, page)
        return encode(Action.RESTYLE_PAGE, self.job_id, page)

    def pick(self, name: str) -> str:
        if self.job_id is None:
            head = f"{PREFIX}:{Action.STYLE_PICK}:"
            return encode(Action.STYLE_PICK, style_token(name, CALLBACK_DATA_LIMIT - len(head)))
        head = f"{PREFIX}:{Action.RESTYLE_PICK}:{self.job_id}:"
        token = style_token(name, CALLBACK_DATA_LIMIT - len(head.encode()))
        return encode(Action.RESTYLE_PICK, self.job_id, token)


def _nav_row(page: int, pages: int, to_page: _PageData, lang: Lang) -> list[InlineKeyboardButton]:
    row = []
    if page > 0:
        row.append(InlineKeyboardButton(t("button.back", lang), callback_data=to_page(page - 1)))
    if page + 1 < pages:
        row.append(InlineKeyboardButton(t("button.more", lang), callback_data=to_page(page + 1)))
    return row


def style_keyboard(
    styles: list[StyleInfo],
    page: int,
    language_code: str | None,
    *,
    job_id: int | None = None,
) -> InlineKeyboardMarkup:
    """A page of styles, two per row, with Back/More; for ``/style`` also a "No style" button.

    With ``job_id`` the picks restyle that job instead of setting the user's default.
    """
    data = _PageData(job_id)
    page = min(max(page, 0), page_count(styles) - 1)
    buttons = [
        InlineKeyboardButton(style_label(s, language_code), callback_data=data.pick(s.name))
        for s in _page_slice(styles, page)
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = _nav_row(page, page_count(styles), data, language_code)
    if nav:
        rows.append(nav)
    if job_id is None:
        no_style = t("button.no_style", language_code)
        rows.append([InlineKeyboardButton(no_style, callback_data=encode(Action.STYLE_CLEAR))])
    return InlineKeyboardMarkup(rows)


def cancel_keyboard(job_ids: list[int], lang: Lang) -> InlineKeyboardMarkup | None:
    if not job_ids:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t("button.cancel_job", lang, job=j), callback_data=encode(Action.CANCEL, j)
                )
            ]
            for j in job_ids[:20]
        ]
    )


def shown_score(markup: InlineKeyboardMarkup | None, data: str) -> int:
    """The count on the like button ``data`` of a showcase post, as its viewers saw it."""
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if button.callback_data == data:
                digits = "".join(ch for ch in button.text if ch.isdigit())
                return int(digits) if digits else 0
    return 0
