"""Buttons and selects whose whole state is the ``custom_id``, so they work after a restart.

``tb:<action>:<job id>`` is parsed back by :class:`JobButton` (a ``DynamicItem``); everything
else about the job comes from the core (SQLite). The client registers the item classes in
``setup_hook`` and forwards clicks to the handlers it owns. Gallery pages carry their query in
the id (``tb:gal:<sort>:<period>:<page>``); the /forget confirmation carries the user it is for.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import discord

from bot.domain import Language, StyleInfo
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


RESULT_ACTIONS = (
    Action.REROLL,
    Action.VARY,
    Action.RESTYLE,
    Action.SHARE,
    Action.REMIX,
    Action.DELETE,
    Action.INFO,
    Action.ENHANCE,
)
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


def result_view(job_id: int, lang: Lang) -> discord.ui.View:
    """The buttons under a posted image."""
    view = discord.ui.View(timeout=None)
    for action in RESULT_ACTIONS:
        view.add_item(JobButton(action, job_id, lang))
    return view


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
