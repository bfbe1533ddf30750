"""/describe on Telegram: a photo captioned ``/describe``, or ``/describe`` as a reply to a
photo; the result as plain text with inline buttons "Imagine this" and "Edit first". "Edit
first" sends the prompt back with a ForceReply: the user's answer to that message is imagined.
The ForceReply message starts with ``✏️ #<job>``, so an answer still works after a restart.

The core already sanitised ``job.text``; it is sent without a parse mode, so nothing in it is
markup. Adapters only translate: availability, limits and the queue are the core's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import MessageHandler, filters

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.keyboards import Action, Callback, encode
from adapters.telegram.updates import Ctx, Handler, Ignored
from bot.domain import MAX_INPUT_BYTES, GenerateRequest, Job, JobAction
from bot.errors import BadRequest
from bot.i18n import language_of, msg, t
from bot.ports import BotApi

if TYPE_CHECKING:
    from adapters.telegram.status import StatusMessages

EDIT_MARK = "✏️ #"
_EDIT_HEAD = re.compile(r"✏️ #([0-9]{1,18})")
CAPTION_COMMAND = re.compile(r"^/describe(@\w+)?(\s|$)", re.IGNORECASE)


def describe_keyboard(job: Job, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "🖼 " + t("button.imagine_this", lang),
                    callback_data=encode(Action.DESCRIBED_IMAGINE, job.id),
                ),
                InlineKeyboardButton(
                    "✏️ " + t("button.edit_first", lang),
                    callback_data=encode(Action.DESCRIBED_EDIT, job.id),
                ),
            ]
        ]
    )


class Describe:
    """The describe commands and buttons; ``lang`` is the adapter's reply-language rule."""

    def __init__(
        self, core: BotApi, status: StatusMessages, lang: Callable[[Update], Awaitable[str]]
    ) -> None:
        self._core = core
        self._status = status
        self._lang = lang

    def handlers(self, guard: Callable[[str, Handler], Handler]) -> list[MessageHandler[Ctx, None]]:
        """A captioned photo and a text answer to an "Edit first" message (``guard``: the
        adapter's error boundary and intake gate)."""
        photo = filters.PHOTO & filters.CaptionRegex(CAPTION_COMMAND) & filters.UpdateType.MESSAGE
        edited = filters.REPLY & filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE
        return [
            MessageHandler(photo, guard("describe", self.command)),
            MessageHandler(edited, guard("describe_edit", self.edited)),
        ]

    def buttons(self) -> dict[Action, Callable[[Update, Callback], Awaitable[str | None]]]:
        return {Action.DESCRIBED_IMAGINE: self._imagine, Action.DESCRIBED_EDIT: self._edit}

    async def command(self, update: Update, context: Ctx) -> None:
        """``/describe`` on a photo (its caption) or answering one."""
        message = tg.message(update)
        source = message if message.photo else message.reply_to_message
        lang = await self._lang(update)
        if source is None or not source.photo:
            await message.reply_text(t("telegram.describe_usage", lang))
            return
        size = source.photo[-1]  # the largest Telegram keeps
        if (size.file_size or 0) > MAX_INPUT_BYTES:
            raise BadRequest(msg("discord.describe_too_big", mb=MAX_INPUT_BYTES // 2**20))
        data = bytes(await (await size.get_file()).download_as_bytearray())
        ticket = await self._core.describe(tg.requester(update), data, language_of(lang))
        await self._status.post(ticket, message.chat_id, message.message_id, lang)

    async def edited(self, update: Update, context: Ctx) -> None:
        """A text answering our "Edit first" message: imagine it (any other reply is not ours)."""
        message = tg.message(update)
        parent = message.reply_to_message
        bot_id = message.get_bot().id
        head = _EDIT_HEAD.match((parent.text or "") if parent else "")
        if parent is None or head is None or parent.from_user is None:
            raise Ignored
        if parent.from_user.id != bot_id:
            raise Ignored
        ticket = await self._core.submit(GenerateRequest(tg.requester(update), message.text or ""))
        await self._status.post(
            ticket, message.chat_id, message.message_id, await self._lang(update)
        )

    async def _described(self, update: Update, callback: Callback) -> Job:
        job = await self._core.job_for(tg.requester(update), callback.int_arg(0), JobAction.DETAILS)
        if not job.text:
            raise BadRequest(msg("discord.describe_not_ready", job=job.id))
        return job

    async def _imagine(self, update: Update, callback: Callback) -> str:
        job = await self._described(update, callback)
        ticket = await self._core.submit(GenerateRequest(tg.requester(update), job.text or ""))
        message = tg.message(update)
        lang = await self._lang(update)
        await self._status.post(ticket, message.chat_id, message.message_id, lang)
        return texts.queued(ticket, lang)

    async def _edit(self, update: Update, callback: Callback) -> str:
        job = await self._described(update, callback)
        lang = await self._lang(update)
        message = tg.message(update)
        head = f"{EDIT_MARK}{job.id} " + t("telegram.describe_edit", lang)
        await message.get_bot().send_message(
            message.chat_id,
            texts.shorten(f"{head}\n{job.text}", texts.MESSAGE_LIMIT),
            reply_markup=ForceReply(selective=True),
            reply_parameters=tg.reply_to(message.message_id),
        )
        return t("telegram.describe_edit_sent", lang)
