"""The buttons under a posted job (Telegram): reroll, ✨ enhance, variation, restyle (with its
style picker, which becomes the new job's status message), original file, delete (group admins
too) and cancel. Each answers the button's toast text, or None."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.keyboards import Action, Callback, page_count, resolve_style, style_keyboard
from adapters.telegram.status import StatusMessages
from bot.domain import DeriveKind, JobAction, Ticket
from bot.errors import NotAllowed
from bot.i18n import t
from bot.ports import BotApi

Button = Callable[[Update, Callback], Awaitable[str | None]]


class JobButtons:
    """``lang`` is the adapter's reply-language rule; ``monotonic`` starts the progress
    throttle of a status message adopted from a picker."""

    def __init__(
        self,
        core: BotApi,
        app: Application[Any, Any, Any, Any, Any, Any],
        community: Community,
        status: StatusMessages,
        *,
        monotonic: Callable[[], float],
        lang: Callable[[Update], Awaitable[str]],
    ) -> None:
        self._core = core
        self._app = app
        self._community = community
        self._status = status
        self._monotonic = monotonic
        self._lang = lang

    def buttons(self) -> dict[Action, Button]:
        return {
            Action.ENHANCE: self.on_enhance,
            Action.REROLL: self.on_reroll,
            Action.VARIATION: self.on_variation,
            Action.RESTYLE: self.on_restyle,
            Action.RESTYLE_PAGE: self.on_restyle_page,
            Action.RESTYLE_PICK: self.on_restyle_pick,
            Action.ORIGINAL: self.on_original,
            Action.DELETE: self.on_delete,
            Action.CANCEL: self.on_cancel_button,
        }

    async def on_reroll(self, update: Update, callback: Callback) -> str:
        ticket = await self._core.derive(
            tg.requester(update), callback.int_arg(0), DeriveKind.REROLL
        )
        return await self._queued(update, ticket)

    async def on_enhance(self, update: Update, callback: Callback) -> str:
        requester = tg.requester(update)
        ticket = await self._core.derive(requester, callback.int_arg(0), DeriveKind.ENHANCE)
        return await self._queued(update, ticket)

    async def on_variation(self, update: Update, callback: Callback) -> str:
        ticket = await self._core.derive(tg.requester(update), callback.int_arg(0), DeriveKind.VARY)
        return await self._queued(update, ticket)

    async def on_restyle(self, update: Update, callback: Callback) -> str | None:
        job_id = callback.int_arg(0)
        styles = self._core.styles()
        if not styles:
            return texts.no_styles(await self._lang(update))
        message = tg.message(update)
        await message.reply_text(
            texts.restyle_picker(job_id, 0, page_count(styles), await self._lang(update)),
            reply_markup=style_keyboard(styles, 0, await self._lang(update), job_id=job_id),
        )
        return None

    async def on_restyle_page(self, update: Update, callback: Callback) -> None:
        job_id, page = callback.int_arg(0), callback.page_arg(1)
        styles = self._core.styles()
        page, lang = min(page, page_count(styles) - 1), await self._lang(update)
        await tg.message(update).edit_text(
            texts.restyle_picker(job_id, page, page_count(styles), lang),
            reply_markup=style_keyboard(styles, page, lang, job_id=job_id),
        )

    async def on_restyle_pick(self, update: Update, callback: Callback) -> str:
        lang = await self._lang(update)
        style = resolve_style(callback.args[1], self._core.styles())
        if style is None:
            return t("telegram.style_gone", lang)
        ticket = await self._core.derive(
            tg.requester(update), callback.int_arg(0), DeriveKind.RESTYLE, style=style
        )
        # The picker message becomes the new job's status message.
        message = tg.message(update)
        sent_at = self._monotonic()
        await message.edit_text(texts.queued(ticket, lang))
        await self._status.adopt(ticket.job.id, message.chat_id, message.message_id, sent_at, lang)
        return texts.queued(ticket, lang)

    async def on_original(self, update: Update, callback: Callback) -> str | None:
        # Who may fetch it (and how often) is the core's rule.
        job = await self._core.job_for(tg.requester(update), callback.int_arg(0), JobAction.SHOW)
        path = self._core.image_file(job)
        if path is None:
            return t("telegram.original_gone", await self._lang(update))
        message = tg.message(update)
        await self._app.bot.send_document(
            message.chat_id,
            document=await asyncio.to_thread(path.read_bytes),
            filename=f"turbobot-{job.id}.jpg",
            reply_parameters=tg.reply_to(message.message_id),
        )
        return None

    async def on_delete(self, update: Update, callback: Callback) -> str:
        requester, job_id = tg.requester(update), callback.int_arg(0)
        try:
            await self._core.delete(requester, job_id)
        except NotAllowed:
            # Group admins may delete any of the bot's images there (the core audit-logs it).
            if not await self._community.is_admin(update):
                raise
            await self._core.delete(requester, job_id, is_admin=True)
        message = tg.message(update)
        try:
            await message.delete()
        except TelegramError:
            # Telegram refuses to delete messages older than 48 hours: drop the buttons instead.
            await message.edit_reply_markup(reply_markup=None)
        return t("telegram.deleted", await self._lang(update))

    async def on_cancel_button(self, update: Update, callback: Callback) -> str:
        job = await self._core.cancel(tg.requester(update), callback.int_arg(0))
        return t("telegram.cancelled", await self._lang(update), job=job.id)

    async def _queued(self, update: Update, ticket: Ticket) -> str:
        message = tg.message(update)
        lang = await self._lang(update)
        await self._status.post(ticket, message.chat_id, message.message_id, lang)
        return texts.queued(ticket, lang)
