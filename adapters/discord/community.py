"""Community commands and events: settings, showcase sharing, votes, gallery, remix, privacy.

Only translation lives here; every rule (who is an admin for the core, who may share, what a
vote is worth, what is hidden) is the core's. The admin check of a Discord member is ours to
make, since only Discord knows it: Manage Server or Administrator in this guild.

Votes are ⭐ reactions on showcase posts, and only ⭐: the bot adds the first ⭐ itself so a vote
is one click, and a raw "reaction removed" event says nothing about the user's other reactions,
so with one voting emoji "added" is exactly +1 and "removed" exactly "no vote". Other emoji are
left alone (a 😂 is not an endorsement).
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

import discord

from adapters.discord import community_format as cfmt
from adapters.discord import format as fmt
from adapters.discord.texts import say
from adapters.discord.views import forget_view, gallery_view, showcase_view
from bot.domain import (
    Job,
    JobAction,
    Language,
    Platform,
    Requester,
    SettingsChange,
    ShareTicket,
    Ticket,
)
from bot.errors import BadRequest, NotAllowed, NotFound, TurbobotError
from bot.i18n import msg, reply_language
from bot.ports import BotApi
from bot.validation import NO_STYLE


class Host(Protocol):
    """What the community commands need from the command handlers that own them: the core,
    the error boundary and the ephemeral answer. A protocol, so this module does not import
    ``handlers`` (which imports this one)."""

    core: BotApi

    def requester(self, interaction: discord.Interaction[Any]) -> Requester: ...

    def guard(
        self, interaction: discord.Interaction[Any], what: str, job_id: int | None = None
    ) -> AbstractAsyncContextManager[None]: ...

    async def answer(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        view: discord.ui.View | None = None,
        files: list[discord.File] | None = None,
    ) -> None: ...

    def check_accepting(self, interaction: discord.Interaction[Any]) -> None: ...

    async def queued(self, interaction: discord.Interaction[Any], ticket: Ticket) -> None: ...


_log = logging.getLogger(__name__)

VOTE_EMOJI = "⭐"
NO_VALUE = frozenset({"none", "-", "all", "off", "clear"})  # typed to clear a text setting
Sort = Literal["recent", "top"]
Period = Literal["week", "month", "all"]
# Typed values for the core; the command's choices and the button template allow no others.
_SORTS: dict[str, Sort] = {"recent": "recent", "top": "top"}
_PERIODS: dict[str, Period] = {"week": "week", "month": "month", "all": "all"}
# /settings option name -> SettingsChange field, for ``reset``.
SETTING_FIELDS = {
    "default_style": "default_style",
    "allowed_styles": "allowed_styles",
    "rate_per_minute": "rate_per_minute",
    "rate_burst": "rate_burst",
    "pending_cap": "max_pending_per_user",
    "showcase_channel": "showcase_channel_id",
    "banned_words": "banned_words",
    "share_outside": "allow_external_share",
    "language": "language",
    "safety_check": "safety_check",
}


def is_server_admin(interaction: discord.Interaction[Any]) -> bool:
    """Discord's one "admin" for the core: Manage Server (what the admin commands ask of
    members by default) or Administrator. It gates every admin action alike: deleting
    others' images, settings, blocks and the audit log."""
    perms = interaction.permissions
    return perms.administrator or perms.manage_guild


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``; a clearing word gives ``()``."""
    if text.strip().lower() in NO_VALUE:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Community:
    """The community half of the handlers; borrows the error boundary and replies."""

    def __init__(self, handlers: Host) -> None:
        self.h = handlers

    @property
    def core(self) -> BotApi:
        return self.h.core

    async def locale(self, interaction: discord.Interaction[Any]) -> Language:
        """The language of every reply to this interaction (the core's one rule): the server's
        setting when it chose one, else the user's client locale (always so in a DM)."""
        server = None if interaction.guild_id is None else str(interaction.guild_id)
        return reply_language(await self.server_language(server), str(interaction.locale))

    async def _require_admin(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.guild_id is None or not is_server_admin(interaction):
            raise NotAllowed(msg("discord.admins_only"))

    # ----------------------------------------------------------------- /settings

    async def settings_show(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "settings show"):
            # Re-checked here: server admins can open the command to everyone.
            await self._require_admin(interaction)
            settings = await self.core.server_settings(Platform.DISCORD, str(interaction.guild_id))
            lang = reply_language(settings.language, str(interaction.locale))
            title = say(lang, "settings_title")
            text = cfmt.settings_text(settings, show_banned=True, lang=lang)
            await self.h.answer(interaction, f"{title}\n{text}")

    async def settings_set(self, interaction: discord.Interaction[Any], **options: Any) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "settings set"):
            if interaction.guild_id is None:
                raise NotAllowed(msg("discord.server_only_settings"))
            change = settings_change(**options)
            who = self.h.requester(interaction)
            settings = await self.core.update_server_settings(
                who, change, is_admin=is_server_admin(interaction)
            )
            # A change of language answers in the new one.
            lang = reply_language(settings.language, str(interaction.locale))
            text = cfmt.settings_text(settings, show_banned=True, lang=lang)
            await self.h.answer(interaction, f"{say(lang, 'settings_saved')}\n{text}")

    # ----------------------------------------------------------------- share, remix, votes

    async def share(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """The Share button: post the image to the showcase channel, with credit and Remix."""
        who = self.h.requester(interaction)
        locale = await self.locale(interaction)
        if who.server_id is None or await self._showcase(who.server_id) is None:
            # No showcase here: the image's own link is still something to pass around.
            await self.h.answer(
                interaction, say(locale, "no_showcase", link=await self._link(job_id, interaction))
            )
            return
        ticket = await self.core.share(who, job_id)
        if ticket.message_id is not None:  # a second click: point at the post, don't repost
            link = fmt.message_link(
                ticket.job.requester.server_id, ticket.channel_id, ticket.message_id
            )
            await self.h.answer(interaction, say(locale, "shared", link=link))
            return
        message = await self._post_showcase(interaction, ticket)
        await self.core.record_share(ticket.share_id, str(message.id))
        with contextlib.suppress(discord.HTTPException):
            await message.add_reaction(VOTE_EMOJI)  # the first ⭐, so voting is one click
        await self.h.answer(interaction, say(locale, "shared", link=message.jump_url))

    async def _showcase(self, server_id: str) -> str | None:
        settings = await self.core.server_settings(Platform.DISCORD, server_id)
        return settings.showcase_channel_id

    async def _link(self, job_id: int, interaction: discord.Interaction[Any]) -> str:
        who = self.h.requester(interaction)
        job: Job = await self.core.job_for(who, job_id, JobAction.VIEW)
        message_id = job.posted_message_id or (
            str(interaction.message.id) if interaction.message else None
        )
        if message_id is None:
            raise NotFound(msg("discord.not_posted", job=job_id))
        return fmt.message_link(job.requester.server_id, job.requester.channel_id, message_id)

    async def _post_showcase(
        self, interaction: discord.Interaction[Any], ticket: ShareTicket
    ) -> discord.Message:
        path = self.core.image_file(ticket.job)
        if path is None:
            raise NotFound(msg("discord.no_image_deleted", job=ticket.job.id))
        client: discord.Client = interaction.client
        channel = client.get_partial_messageable(
            int(ticket.channel_id), guild_id=interaction.guild_id
        )
        file = discord.File(
            path, filename=f"turbobot-{ticket.job.id}.jpg", spoiler=ticket.job.spoiler
        )
        lang = await self.locale(interaction)
        return await channel.send(
            fmt.fit_text(cfmt.showcase_caption(ticket, lang)),
            file=file,
            view=showcase_view(ticket.job.id, lang),
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def on_reaction(
        self, event: discord.RawReactionActionEvent, *, added: bool, bot_id: int | None
    ) -> None:
        """A ⭐ added or removed on a showcase post is a vote (no one to answer: log only)."""
        if event.guild_id is None or event.user_id == bot_id or str(event.emoji) != VOTE_EMOJI:
            return
        try:
            share_id = await self.core.share_by_message(Platform.DISCORD, str(event.message_id))
            if share_id is None:
                return
            name = event.member.display_name if event.member is not None else ""
            voter = fmt.requester_of(event.user_id, name, event.channel_id, event.guild_id)
            await self.core.vote(voter, share_id, 1 if added else 0)
        except TurbobotError as err:
            _log.info("vote by %s not counted: %s", event.user_id, type(err).__name__)
        except Exception:
            _log.exception(
                "discord reaction failed (user %s, guild %s, message %s)",
                event.user_id,
                event.guild_id,
                event.message_id,
            )

    async def remix_credit(self, job: Job, lang: Language) -> str | None:
        """ "remix of #N by NAME" when the core credits somebody else's image."""
        credit = await self.core.credit_for(job)
        if credit is None:
            return None
        return cfmt.remix_credit(credit, lang)

    async def server_language(self, server_id: str | None) -> Language | None:
        """The reply language a server chose (None when it chose none, and outside a server)."""
        if server_id is None:
            return None
        return (await self.core.server_settings(Platform.DISCORD, server_id)).language

    # ----------------------------------------------------------------- /gallery

    async def gallery(self, interaction: discord.Interaction[Any], sort: str, period: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "gallery"):
            text, view = await self._gallery_page(interaction, sort, period, 1)
            await self.h.answer(interaction, text, view)

    async def gallery_page(
        self, interaction: discord.Interaction[Any], sort: str, period: str, page: int
    ) -> None:
        """A page button: the same ephemeral message shows the other page."""
        async with self.h.guard(interaction, "gallery page"):
            text, view = await self._gallery_page(interaction, sort, period, page)
            await interaction.response.edit_message(content=fmt.fit_text(text), view=view)

    async def _gallery_page(
        self, interaction: discord.Interaction[Any], sort: str, period: str, page: int
    ) -> tuple[str, discord.ui.View | None]:
        if interaction.guild_id is None:
            raise NotAllowed(msg("discord.server_only_gallery"))
        server = str(interaction.guild_id)
        size = cfmt.GALLERY_PAGE_SIZE
        # One more than a page, to know whether there is a next one.
        items = await self.core.gallery(
            Platform.DISCORD,
            server,
            sort=_SORTS.get(sort, "recent"),
            period=_PERIODS.get(period, "all"),
            limit=size + 1,
            offset=(page - 1) * size,
        )
        settings = await self.core.server_settings(Platform.DISCORD, server)
        locale = reply_language(settings.language, str(interaction.locale))
        if not items:
            return say(locale, "gallery_empty"), gallery_view(sort, period, page, has_next=False)
        showcase = settings.showcase_channel_id
        links = {
            i.share_id: fmt.message_link(server, showcase, i.message_id)
            for i in items
            if i.message_id and showcase
        }
        text = cfmt.gallery_text(
            items[:size], sort=sort, period=period, page=page, locale=locale, link_of=links
        )
        return text, gallery_view(sort, period, page, has_next=len(items) > size)

    # ----------------------------------------------------------------- privacy

    async def privacy(
        self,
        interaction: discord.Interaction[Any],
        share_opt_out: bool | None,
        hide_details: bool | None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "privacy"):
            who = self.h.requester(interaction)
            if share_opt_out is None and hide_details is None:
                current = await self.core.privacy(who)
            else:
                current = await self.core.set_privacy(
                    who, share_opt_out=share_opt_out, hide_details=hide_details
                )
            locale = await self.locale(interaction)
            share = say(locale, "no" if current.share_opt_out else "yes")
            shown = say(locale, "no" if current.hide_details else "yes")
            await self.h.answer(interaction, say(locale, "privacy", share=share, details=shown))

    async def forget(self, interaction: discord.Interaction[Any]) -> None:
        async with self.h.guard(interaction, "forget"):
            locale = await self.locale(interaction)
            view = forget_view(interaction.user.id, locale)
            await self.h.answer(interaction, say(locale, "forget_confirm"), view)

    async def forget_confirmed(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "forget confirm"):
            locale = await self.locale(interaction)
            if interaction.user.id != user_id:
                raise NotAllowed(msg("discord.not_yours"))
            count = await self.core.forget(self.h.requester(interaction))
            await self.h.answer(interaction, say(locale, "forgotten", count=count))

    # ----------------------------------------------------------------- moderation

    async def block(
        self, interaction: discord.Interaction[Any], user: discord.abc.User, *, blocked: bool
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "block" if blocked else "unblock"):
            who = self.h.requester(interaction)
            await self.core.set_blocked(
                who, str(user.id), blocked, is_admin=is_server_admin(interaction)
            )
            key = "blocked" if blocked else "unblocked"
            name = cfmt.plain_name(user.display_name)
            await self.h.answer(interaction, say(await self.locale(interaction), key, user=name))

    async def audit(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.h.guard(interaction, "audit"):
            entries = await self.core.audit_log(
                self.h.requester(interaction), is_admin=is_server_admin(interaction)
            )
            await self.h.answer(
                interaction, cfmt.audit_text(entries, await self.locale(interaction))
            )


def settings_change(**options: Any) -> SettingsChange:
    """``/settings set`` options -> a :class:`SettingsChange` (unset options stay unchanged)."""
    values: dict[str, Any] = {}
    clear: set[str] = set()
    for name in _text_list(options.pop("reset", None)):
        if name not in SETTING_FIELDS:
            raise BadRequest(
                msg("discord.unknown_setting", name=name, known=", ".join(SETTING_FIELDS))
            )
        clear.add(SETTING_FIELDS[name])
    for name, value in options.items():
        if value is None:
            continue
        field = SETTING_FIELDS[name]
        if name == "default_style" and str(value).strip().lower() in NO_STYLE:
            clear.add(field)
        elif name in {"allowed_styles", "banned_words"}:
            values[field] = comma_list(str(value))
        elif name == "showcase_channel":
            values[field] = str(value.id)
        elif name == "language":
            values[field] = Language(value)
        else:
            values[field] = value
    return SettingsChange(**values, clear=frozenset(clear))


def _text_list(text: str | None) -> tuple[str, ...]:
    return () if text is None else tuple(p.strip() for p in text.split(",") if p.strip())
