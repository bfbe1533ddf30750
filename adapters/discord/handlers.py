"""Discord interactions in, core calls out: every command and button handler lives here.

Each handler acknowledges first (Discord allows 3 s), then asks the core, then answers in the
user's language. :meth:`Handlers.guard` is the one error boundary: a ``TurbobotError`` becomes
an ephemeral message with its text; anything else is logged once, with context and no secrets,
and the user is told that something went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord import app_commands

from adapters.discord import format as fmt
from adapters.discord.community import Community, is_server_admin
from adapters.discord.inputs import ImagineOptions, download, first_image, load_previews, requester
from adapters.discord.modals import ImageModal, RemixModal, parse_strength
from adapters.discord.status import StatusBoard, post_result
from adapters.discord.texts import help_text, is_chinese, say
from adapters.discord.views import ITERATE_KINDS, Action, Iterate, cancel_view, restyle_view
from bot.domain import DeriveKind, JobAction, Language, Requester, Ticket
from bot.errors import BadRequest, NotAllowed, NotFound, ShuttingDown, TurbobotError
from bot.i18n import language_of, msg
from bot.images import check_size
from bot.ports import BotApi, Clock
from bot.texts import styles_rescanned, vlm_lines
from bot.validation import NO_STYLE

_log = logging.getLogger(__name__)


class Handlers:
    """Translates interactions to core calls; ``status`` keeps the replies showing progress."""

    requester = staticmethod(requester)

    def __init__(self, core: BotApi, clock: Clock) -> None:
        self.core = core
        self.clock = clock
        self.accepting = True
        self.status = StatusBoard(clock)
        self.community = Community(self)

    # ----------------------------------------------------------------- error boundary

    async def lang(self, interaction: discord.Interaction[Any]) -> Language:
        """The language of every reply (the core's rule, :func:`bot.i18n.reply_language`)."""
        return await self.community.locale(interaction)

    async def error_language(self, interaction: discord.Interaction[Any]) -> Language:
        """:meth:`lang`, or the user's own when the server's setting cannot be read."""
        try:
            return await self.lang(interaction)
        except Exception:  # the error being reported may be the store's own
            return language_of(str(interaction.locale))

    @contextlib.asynccontextmanager
    async def guard(
        self, interaction: discord.Interaction[Any], what: str, job_id: int | None = None
    ) -> AsyncIterator[None]:
        try:
            yield
        except TurbobotError as err:
            await self.answer(interaction, err.render(await self.error_language(interaction)))
        except Exception:
            # Context for whoever reads the log; never the token or the interaction payload.
            _log.exception(
                "discord %s failed (user %s, guild %s, channel %s, job %s)",
                what,
                interaction.user.id,
                interaction.guild_id,
                interaction.channel_id,
                job_id,
            )
            with contextlib.suppress(discord.HTTPException):
                lang = await self.error_language(interaction)
                await self.answer(interaction, say(lang, "went_wrong"))

    async def answer(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        view: discord.ui.View | None = None,
        files: list[discord.File] | None = None,
    ) -> None:
        """An ephemeral answer, whether or not the interaction was acknowledged yet."""
        text = fmt.fit_text(text)
        extra: dict[str, Any] = {} if view is None else {"view": view}
        if files:
            extra["files"] = files
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, **extra)
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # An edit takes ``attachments`` (it replaces the message's files), not ``files``.
            if files:
                extra["attachments"] = extra.pop("files")
            await interaction.edit_original_response(content=text, **extra)
        else:
            await interaction.followup.send(text, ephemeral=True, **extra)

    def check_accepting(self, interaction: discord.Interaction[Any]) -> None:
        if not self.accepting:
            raise ShuttingDown(msg("discord.stopping"))

    # ----------------------------------------------------------------- commands

    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: str,
        options: ImagineOptions,
        image: discord.Attachment | None = None,
    ) -> None:
        # Acknowledge before anything else: the core may take a moment (SQLite commit).
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, "imagine"):
            self.check_accepting(interaction)
            request = options.request(requester(interaction), prompt)
            data = None if image is None else await download(image)
            await self.queued(interaction, await self.core.submit(request, image=data))

    async def image_from_message(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """The "Imagine from image" menu on a message: a form for the prompt and strength
        (a modal is the reply itself, so it opens within Discord's 3 s, no deferral)."""
        async with self.guard(interaction, "image-menu"):
            self.check_accepting(interaction)
            lang = await self.lang(interaction)
            attachment = first_image(message)
            if attachment is None:
                raise BadRequest(msg("discord.no_image_attachment"))
            check_size(attachment.size)  # refused before the form, and before any download
            await interaction.response.send_modal(ImageModal(attachment, message.content, lang))

    async def on_image_submit(
        self,
        interaction: discord.Interaction[Any],
        attachment: discord.Attachment,
        prompt: str,
        strength: str,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, "image-form"):
            self.check_accepting(interaction)
            options = ImagineOptions(strength=parse_strength(strength))
            request = options.request(requester(interaction), prompt)
            data = await download(attachment)
            await self.queued(interaction, await self.core.submit(request, image=data))

    async def style_list(self, interaction: discord.Interaction[Any]) -> None:
        async with self.guard(interaction, "style list"):
            # Reading and uploading previews can outlast Discord's 3 s: acknowledge first.
            await interaction.response.defer(ephemeral=True, thinking=True)
            default = await self.core.default_style(requester(interaction))
            styles = self.core.styles()
            previews = await asyncio.to_thread(
                load_previews, styles, self._upload_limit(interaction)
            )
            with_preview = sum(1 for s in styles if s.preview_path)
            lang = await self.lang(interaction)
            note = None
            if len(previews) < with_preview:
                note = say(lang, "previews_shown", shown=len(previews), total=with_preview)
            text = fmt.styles_text(styles, default, lang is Language.ZH, note)
            files = [discord.File(io.BytesIO(data), filename=name) for name, data in previews]
            await self.answer(interaction, text, files=files)

    async def style_set(self, interaction: discord.Interaction[Any], style: str | None) -> None:
        async with self.guard(interaction, "style set"):
            if style is not None and style.strip().lower() in NO_STYLE:
                style = None
            await self.core.set_default_style(requester(interaction), style)
            key = "default_set" if style else "default_cleared"
            await self.answer(interaction, say(await self.lang(interaction), key, style=style))

    async def history(self, interaction: discord.Interaction[Any], page: int) -> None:
        async with self.guard(interaction, "history"):
            size = fmt.HISTORY_PAGE_SIZE
            jobs = await self.core.history(
                requester(interaction), limit=size, offset=(page - 1) * size
            )
            lang = await self.lang(interaction)
            if not jobs:
                await self.answer(interaction, say(lang, "no_history"))
                return
            await self.answer(interaction, fmt.history_text(jobs, page, lang))

    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        async with self.guard(interaction, "queue"):
            entries = await self.core.queue_of(requester(interaction))
            lang = await self.lang(interaction)
            if not entries:
                await self.answer(interaction, say(lang, "no_jobs"))
                return
            waiting = [job.id for job, position in entries if position > 0]
            view = cancel_view(waiting, lang) if waiting else None
            await self.answer(interaction, fmt.queue_text(entries, lang), view)

    async def show(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, "show", job_id):
            # Who may post it again (and how often) is the core's rule.
            job = await self.core.job_for(requester(interaction), job_id, JobAction.SHOW)
            path = self.core.image_file(job)
            if path is None:
                raise NotFound(msg("discord.no_image", job=job_id))
            channel = self._channel(interaction)
            lang = await self.lang(interaction)
            credit = await self.community.remix_credit(job, lang)
            limit = self._upload_limit(interaction)
            message = await post_result(channel, job, path, limit, credit=credit, lang=lang)
            chain = await self.core.lineage(requester(interaction), job_id)
            await self.answer(interaction, fmt.with_lineage(message.jump_url, chain, lang))

    async def help(self, interaction: discord.Interaction[Any]) -> None:
        async with self.guard(interaction, "help"):
            lang = await self.lang(interaction)
            lines = vlm_lines(self.core.vlm_availability(), lang)
            await self.answer(interaction, "\n".join([help_text(lang), *lines]))

    async def styles_rescan(self, interaction: discord.Interaction[Any]) -> None:
        async with self.guard(interaction, "styles-rescan"):
            # A rescan reads every style file: acknowledge within Discord's 3 s first.
            await interaction.response.defer(ephemeral=True, thinking=True)
            changes = await self.core.rescan_styles(requester(interaction))
            lang = await self.lang(interaction)
            await self.answer(interaction, styles_rescanned(changes).render(lang))

    async def style_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        try:
            styles = self.core.styles()
        except Exception:
            _log.exception("style autocomplete failed (user %s)", interaction.user.id)
            return []
        # Choices are the command's own UI, like its name: in the client's language, and
        # without a store read on every keystroke.
        chinese = is_chinese(interaction.locale)
        return [
            app_commands.Choice(name=label, value=value)
            for label, value in fmt.style_choices(styles, current, chinese)
        ]

    # ----------------------------------------------------------------- buttons

    async def on_button(
        self, interaction: discord.Interaction[Any], action: Action, job_id: int
    ) -> None:
        if action is Action.REMIX:  # a form, which must be the first reply
            await self.open_remix(interaction, job_id, 1)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, f"button {action}", job_id):
            who = requester(interaction)
            match action:
                case Action.REROLL:
                    self.check_accepting(interaction)
                    ticket = await self.core.derive(who, job_id, DeriveKind.REROLL)
                    await self.queued(interaction, ticket)
                case Action.ENHANCE:
                    self.check_accepting(interaction)
                    ticket = await self.core.derive(who, job_id, DeriveKind.ENHANCE)
                    await self.queued(interaction, ticket)
                case Action.VARY:
                    self.check_accepting(interaction)
                    ticket = await self.core.derive(who, job_id, DeriveKind.VARY)
                    await self.queued(interaction, ticket)
                case Action.RESTYLE:
                    lang = await self.lang(interaction)
                    await self.answer(
                        interaction,
                        say(lang, "restyle_title", job=job_id),
                        restyle_view(job_id, self.core.styles(), lang),
                    )
                case Action.SHARE:
                    await self.community.share(interaction, job_id)
                case Action.DELETE:
                    await self._delete(interaction, who, job_id)
                case Action.INFO:
                    job = await self.core.job_for(who, job_id, JobAction.DETAILS)
                    await self.answer(interaction, fmt.info_text(job, await self.lang(interaction)))
                case Action.CANCEL:
                    job = await self.core.cancel(who, job_id)
                    lang = await self.lang(interaction)
                    await self.answer(interaction, say(lang, "cancelled", job=job.id))

    async def on_iterate(
        self, interaction: discord.Interaction[Any], op: Iterate, job_id: int, index: int
    ) -> None:
        """U k, V k, vary and upscale of image ``index``: the core's rule for each kind."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, f"iterate-{op}", job_id):
            self.check_accepting(interaction)
            kind = ITERATE_KINDS[op]
            ticket = await self.core.derive(requester(interaction), job_id, kind, image=index)
            await self.queued(interaction, ticket)

    async def open_remix(
        self, interaction: discord.Interaction[Any], job_id: int, index: int
    ) -> None:
        """The remix form, pre-filled with the prompt as the presser may see it (empty when
        its author hides it: left empty, the original is kept)."""
        async with self.guard(interaction, "remix", job_id):
            self.check_accepting(interaction)
            job = await self.core.job_for(requester(interaction), job_id, JobAction.REMIX)
            prompt = None if job.details_hidden else job.spec.prompt
            lang = await self.lang(interaction)
            await interaction.response.send_modal(RemixModal(job_id, index, prompt, lang))

    async def on_remix_submit(
        self,
        interaction: discord.Interaction[Any],
        job_id: int,
        index: int,
        prompt: str | None,
        strength: str,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, "remix-form", job_id):
            self.check_accepting(interaction)
            ticket = await self.core.derive(
                requester(interaction),
                job_id,
                DeriveKind.REMIX,
                image=index,
                prompt=prompt,
                strength=parse_strength(strength),
            )
            await self.queued(interaction, ticket)

    async def on_restyle(
        self, interaction: discord.Interaction[Any], job_id: int, style: str
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.guard(interaction, "restyle", job_id):
            self.check_accepting(interaction)
            # Same seed, other style: the user sees what the style changes, nothing else.
            who = requester(interaction)
            ticket = await self.core.derive(who, job_id, DeriveKind.RESTYLE, style=style)
            await self.queued(interaction, ticket)

    async def on_gallery_page(
        self, interaction: discord.Interaction[Any], sort: str, period: str, page: int
    ) -> None:
        await self.community.gallery_page(interaction, sort, period, page)

    async def on_forget(self, interaction: discord.Interaction[Any], user_id: int) -> None:
        await self.community.forget_confirmed(interaction, user_id)

    async def _delete(
        self, interaction: discord.Interaction[Any], who: Requester, job_id: int
    ) -> None:
        await self.core.delete(who, job_id, is_admin=is_server_admin(interaction))
        if interaction.message is not None:
            with contextlib.suppress(discord.NotFound):
                await interaction.message.delete()
        await self.answer(interaction, say(await self.lang(interaction), "deleted", job=job_id))

    # ----------------------------------------------------------------- progress bookkeeping

    async def queued(self, interaction: discord.Interaction[Any], ticket: Ticket) -> None:
        job = ticket.job
        lang = await self.lang(interaction)
        # No await between here and track(): the job may finish at any await.
        done = self.status.take_finished(job.id)
        if done is not None:
            await self.answer(interaction, f"#{job.id} · {done.render(lang)}")
            return
        tracked = self.status.track(job.id, interaction, lang)
        text = say(lang, "queued", position=ticket.position, eta=fmt.eta_text(ticket.eta_s))
        # Progress may arrive while this edit is in flight: as "pending" it holds them back, and
        # "done" waits for it, so the user never sees "queued" after "done".
        tracked.pending = asyncio.ensure_future(self.answer(interaction, f"#{job.id} · {text}"))
        await tracked.pending

    # ----------------------------------------------------------------- helpers

    def _channel(self, interaction: discord.Interaction[Any]) -> discord.PartialMessageable:
        if interaction.channel_id is None:
            raise NotAllowed(msg("discord.channel_only"))
        client: discord.Client = interaction.client
        return client.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)

    @staticmethod
    def _upload_limit(interaction: discord.Interaction[Any]) -> int:
        return int(interaction.filesize_limit or fmt.DEFAULT_UPLOAD_LIMIT)
