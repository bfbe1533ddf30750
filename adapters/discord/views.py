"""Buttons and selects whose whole state is the ``custom_id``, so they work after a restart.

``tb:<action>:<job id>`` is parsed back by :class:`JobButton` (a ``DynamicItem``); everything
else about the job comes from the core (SQLite). Iteration on image k of a job (issue 13) is
``tb:it:<op>:<job id>:<k>`` (:class:`ImageButton`): U1-U4 and V1-V4 under a grid, and vary /
upscale under a single image. The client registers the item classes in
``setup_hook`` and forwards clicks to the handlers it owns. Gallery pages carry their query in
the id (``tb:gal:<sort>:<period>:<page>``); the /forget confirmation carries the user it is for.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.domain import DeriveKind, Language, StyleInfo
from bot.i18n import t

if TYPE_CHECKING:
    from discord.ui import Item


class Action(StrEnum):
    REROLL = "reroll"
    VARY = "vary"
    RESTYLE = "restyle"
    SHARE = "share"
    REMIX = "remix"
    DELETE = "delete"
    INFO = "info"
    CANCEL = "cancel"
    ENHANCE = "enhance"


# Under one image. The seed-only Variations button (Action.VARY) gave way to Vary subtle /
# strong (a reroll under another name, issue 13); its id still parses for older posts.
RESULT_ACTIONS = (
    Action.REROLL,
    Action.RESTYLE,
    Action.SHARE,
    Action.DELETE,
    Action.INFO,
)
GRID_ACTIONS = (Action.REROLL, Action.RESTYLE, Action.SHARE, Action.DELETE, Action.INFO)


class Iterate(StrEnum):
    """What an image button does with image k of a job (the core's ``DeriveKind``)."""

    PICK = "u"  # U k: image k alone
    VARY = "v"  # V k under a grid: a strong variation, as Midjourney's grid V buttons
    VARY_SUBTLE = "vs"
    VARY_STRONG = "vx"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"


ITERATE_KINDS: dict[Iterate, DeriveKind] = {
    Iterate.PICK: DeriveKind.PICK,
    Iterate.VARY: DeriveKind.VARY_STRONG,
    Iterate.VARY_SUBTLE: DeriveKind.VARY_SUBTLE,
    Iterate.VARY_STRONG: DeriveKind.VARY_STRONG,
    Iterate.UPSCALE_SUBTLE: DeriveKind.UPSCALE_SUBTLE,
    Iterate.UPSCALE_CREATIVE: DeriveKind.UPSCALE_CREATIVE,
}
SINGLE_ITERATIONS = (
    Iterate.VARY_SUBTLE,
    Iterate.VARY_STRONG,
    Iterate.UPSCALE_SUBTLE,
    Iterate.UPSCALE_CREATIVE,
)
_ITERATE_LOOK: dict[Iterate, tuple[str, discord.ButtonStyle]] = {
    Iterate.PICK: ("button.pick", discord.ButtonStyle.secondary),
    Iterate.VARY: ("button.vary_k", discord.ButtonStyle.secondary),
    Iterate.VARY_SUBTLE: ("button.vary_subtle", discord.ButtonStyle.primary),
    Iterate.VARY_STRONG: ("button.vary_strong", discord.ButtonStyle.primary),
    Iterate.UPSCALE_SUBTLE: ("button.upscale_subtle", discord.ButtonStyle.secondary),
    Iterate.UPSCALE_CREATIVE: ("button.upscale_creative", discord.ButtonStyle.secondary),
}
ROW_SIZE = 5  # Discord: at most 5 buttons in a row, 5 rows in a message
SELECT_LIMIT = 25  # options in one select menu

Lang = Language | str
# label (a catalogue key), emoji, colour
_LOOK: dict[Action, tuple[str, str, discord.ButtonStyle]] = {
    Action.REROLL: ("button.reroll", "🎲", discord.ButtonStyle.primary),
    Action.VARY: ("button.variations", "🔀", discord.ButtonStyle.secondary),
    Action.RESTYLE: ("button.restyle", "🎨", discord.ButtonStyle.secondary),
    Action.SHARE: ("button.share", "🔗", discord.ButtonStyle.secondary),
    Action.REMIX: ("button.remix", "🧬", discord.ButtonStyle.secondary),
    Action.DELETE: ("button.delete", "🗑️", discord.ButtonStyle.danger),
    Action.INFO: ("button.info", "ℹ️", discord.ButtonStyle.secondary),  # noqa: RUF001 (an emoji)
    Action.CANCEL: ("button.cancel", "✖️", discord.ButtonStyle.danger),
    Action.ENHANCE: ("button.enhance", "✨", discord.ButtonStyle.secondary),
}


class ClickHandler(Protocol):
    """What the client offers buttons and selects (implemented by ``handlers.Handlers``)."""

    async def on_button(
        self, interaction: discord.Interaction[Any], action: Action, job_id: int
    ) -> None: ...

    async def on_restyle(
        self, interaction: discord.Interaction[Any], job_id: int, style: str
    ) -> None: ...

    async def on_gallery_page(
        self, interaction: discord.Interaction[Any], sort: str, period: str, page: int
    ) -> None: ...

    async def on_forget(self, interaction: discord.Interaction[Any], user_id: int) -> None: ...

    async def on_iterate(
        self, interaction: discord.Interaction[Any], op: Iterate, job_id: int, index: int
    ) -> None: ...


class HasClickHandler(Protocol):
    @property
    def handlers(self) -> ClickHandler: ...


def _handler(interaction: discord.Interaction[Any]) -> ClickHandler:
    client: HasClickHandler = interaction.client
    return client.handlers


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"tb:(?P<action>{'|'.join(Action)}):(?P<job>[0-9]{{1,18}})",
):
    def __init__(self, action: Action, job_id: int, lang: Lang = Language.EN) -> None:
        label, emoji, style = _LOOK[action]
        self.action = action
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(
                label=t(label, lang), emoji=emoji, style=style, custom_id=f"tb:{action}:{job_id}"
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        return cls(Action(match["action"]), int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_button(interaction, self.action, self.job_id)


class RestyleSelect(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=r"tb:style:(?P<job>[0-9]{1,18})",
):
    def __init__(
        self, job_id: int, styles: list[StyleInfo] | None = None, lang: Lang = Language.EN
    ) -> None:
        self.job_id = job_id
        options = [
            discord.SelectOption(label=s.display_name[:100], value=s.name, description=s.name)
            for s in (styles or [])[:SELECT_LIMIT]
        ]
        none = discord.SelectOption(label=t("button.none", lang), value="none")
        super().__init__(
            discord.ui.Select(
                custom_id=f"tb:style:{job_id}",
                placeholder=t("button.pick_style", lang),
                options=options or [none],
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: Item[Any],
        match: re.Match[str],
        /,
    ) -> RestyleSelect:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        values = data.get("values") or []
        if values:
            await _handler(interaction).on_restyle(interaction, self.job_id, str(values[0]))


class ImageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=rf"tb:it:(?P<op>{'|'.join(Iterate)}):(?P<job>[0-9]{{1,18}}):(?P<k>[1-9])",
):
    """U k, V k, vary and upscale of image k of a job; the id is the whole state."""

    def __init__(self, op: Iterate, job_id: int, index: int, lang: Lang = Language.EN) -> None:
        label, style = _ITERATE_LOOK[op]
        self.op = op
        self.job_id = job_id
        self.index = index
        super().__init__(
            discord.ui.Button(
                label=t(label, lang, k=index),
                style=style,
                custom_id=f"tb:it:{op}:{job_id}:{index}",
                row=_row_of(op),
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: Item[Any],
        match: re.Match[str],
        /,
    ) -> ImageButton:
        return cls(Iterate(match["op"]), int(match["job"]), int(match["k"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_iterate(interaction, self.op, self.job_id, self.index)


def _row_of(op: Iterate) -> int:
    # A grid: U1..U4 in the first row, V1..V4 in the second; one image: its four in the first.
    return 1 if op is Iterate.VARY else 0


def result_view(job_id: int, lang: Lang, images: int = 1) -> discord.ui.View:
    """The buttons under a posted image: for a grid of ``images``, U1..Un and V1..Vn above the
    usual ones; for one image, vary / upscale / remix above the usual ones; ✨ Enhance below."""
    view = discord.ui.View(timeout=None)
    if images > 1:
        for op in (Iterate.PICK, Iterate.VARY):
            for k in range(1, images + 1):
                view.add_item(ImageButton(op, job_id, k, lang))
        actions = GRID_ACTIONS
    else:
        for op in SINGLE_ITERATIONS:
            view.add_item(ImageButton(op, job_id, 1, lang))
        view.add_item(_in_row(JobButton(Action.REMIX, job_id, lang), 0))
        actions = RESULT_ACTIONS
    for action in actions:
        view.add_item(_in_row(JobButton(action, job_id, lang), 2))
    # A row of its own: rows 0 to 2 are full (Discord allows 5 buttons a row, 5 rows).
    view.add_item(_in_row(JobButton(Action.ENHANCE, job_id, lang), 3))
    return view


def _in_row(button: JobButton, row: int) -> JobButton:
    button.item.row = row
    return button


def cancel_view(job_ids: list[int], lang: Lang) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for job_id in job_ids[:SELECT_LIMIT]:
        button = JobButton(Action.CANCEL, job_id, lang)
        button.item.label = t("button.cancel_job", lang, job=job_id)
        view.add_item(button)
    return view


def restyle_view(job_id: int, styles: list[StyleInfo], lang: Lang) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RestyleSelect(job_id, styles, lang))
    return view


def showcase_view(job_id: int, lang: Lang) -> discord.ui.View:
    """Under a showcase post: anyone may remix it (votes are reactions, not buttons)."""
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.REMIX, job_id, lang))
    return view


GALLERY_SORTS = ("recent", "top")
GALLERY_PERIODS = ("week", "month", "all")


class GalleryButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"tb:gal:(?P<sort>recent|top):(?P<period>week|month|all):(?P<page>[0-9]{1,6})",
):
    def __init__(self, sort: str, period: str, page: int, label: str = "") -> None:
        self.sort = sort
        self.period = period
        self.page = page
        super().__init__(
            discord.ui.Button(
                label=label or t("button.page", page=page),
                style=discord.ButtonStyle.secondary,
                custom_id=f"tb:gal:{sort}:{period}:{page}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: Item[Any],
        match: re.Match[str],
        /,
    ) -> GalleryButton:
        return cls(match["sort"], match["period"], int(match["page"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_gallery_page(interaction, self.sort, self.period, self.page)


def gallery_view(sort: str, period: str, page: int, has_next: bool) -> discord.ui.View | None:
    """Previous / next buttons for a gallery page (None when there is only one page)."""
    view = discord.ui.View(timeout=None)
    if page > 1:
        view.add_item(GalleryButton(sort, period, page - 1, label="◀"))
    if has_next:
        view.add_item(GalleryButton(sort, period, page + 1, label="▶"))
    return view if view.children else None


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"tb:forget:(?P<user>[0-9]{1,20})",
):
    """The /forget confirmation; the id names the user so nobody else can press it."""

    def __init__(self, user_id: int, lang: Lang = Language.EN) -> None:
        self.user_id = user_id
        super().__init__(
            discord.ui.Button(
                label=t("button.forget", lang),
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"tb:forget:{user_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: Item[Any],
        match: re.Match[str],
        /,
    ) -> ForgetButton:
        return cls(int(match["user"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_forget(interaction, self.user_id)


def forget_view(user_id: int, lang: Lang) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(user_id, lang))
    return view
