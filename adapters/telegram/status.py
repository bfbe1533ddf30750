"""Status messages on Telegram: "queued" when a job is accepted, edited with its progress,
replaced by the result (or the failure) when the core reports back.

What is kept here (status messages being edited, recently seen file ids) is a convenience
that may be lost without losing anything a user needs: a restarted bot still posts results.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from telegram import InlineKeyboardMarkup, Message
from telegram.error import TelegramError
from telegram.ext import Application

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.describe import describe_keyboard
from adapters.telegram.keyboards import grid_keyboard, is_grid, result_keyboard
from adapters.telegram.photos import fits_as_photo
from bot import i18n
from bot.domain import Delivered, Job, JobState, Ticket
from bot.ports import BotApi

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.5  # Telegram allows about one message per second per chat
REMEMBERED_JOBS = 2048

TgApp = Application[Any, Any, Any, Any, Any, Any]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class _Status:
    """The "queued / generating" message of a job, edited with progress."""

    chat_id: int
    message_id: int
    edited_at: float
    lang: str  # the language of the reply that asked (the core's rule)


class _Recent(Generic[K, V]):
    """A small LRU map: enough memory for in-flight work without growing forever."""

    def __init__(self, size: int = REMEMBERED_JOBS) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class StatusMessages:
    """Posts and edits each job's status message, and posts its result.

    ``monotonic`` paces progress edits (injected so tests control time).
    """

    def __init__(
        self, core: BotApi, app: TgApp, community: Community, monotonic: Callable[[], float]
    ) -> None:
        self._core = core
        self._app = app
        self._community = community
        self._monotonic = monotonic
        self._status: _Recent[int, _Status] = _Recent()
        self._finished: _Recent[int, bool] = _Recent()
        self._file_refs: _Recent[int, str] = _Recent()

    # ----- accepted -----
    async def post(self, ticket: Ticket, chat_id: int, reply_to: int, lang: str) -> None:
        """A new "queued" message in ``lang`` under ``reply_to``, edited with the job's
        progress (in the same language) until the result replaces it."""
        if ticket.job.id in self._finished:
            return  # already delivered (an idle GPU is fast): no stale "queued" message
        sent_at = self._monotonic()
        sent = await self._app.bot.send_message(
            chat_id, texts.queued(ticket, lang), reply_parameters=tg.reply_to(reply_to)
        )
        await self.adopt(ticket.job.id, chat_id, sent.message_id, sent_at, lang)

    async def adopt(
        self, job_id: int, chat_id: int, message_id: int, sent_at: float, lang: str
    ) -> None:
        """Edit this message with the job's progress from now on (``sent_at`` starts the
        throttle); if the job finished while the message was being sent, remove it."""
        self._status.put(job_id, _Status(chat_id, message_id, sent_at, lang))
        if job_id in self._finished:
            await self._clear(job_id)

    # ----- the core reports back -----
    async def progress(self, job: Job, step: int, total: int) -> None:
        status = self._status.get(job.id)
        if status is None:
            return
        now = self._monotonic()
        if now - status.edited_at < PROGRESS_INTERVAL_S:
            return  # throttled: Telegram allows about one message per second per chat
        status.edited_at = now
        try:
            await self._app.bot.edit_message_text(
                texts.generating(job, step, total, status.lang),  # the status message's own
                chat_id=status.chat_id,
                message_id=status.message_id,
            )
        except TelegramError as err:  # progress is best effort; the result still arrives
            log.debug("telegram: progress edit for job %s failed: %s", job.id, err)

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        chat_id = int(job.requester.channel_id)
        jpeg = await asyncio.to_thread(Path(jpeg_path).read_bytes)
        sent = await self.send_result(job, chat_id, jpeg, job.requester.reply_to)
        await self._clear(job.id)
        file_ref = sent.photo[-1].file_id if sent.photo else None
        if file_ref is not None:
            self._file_refs.put(job.id, file_ref)
        return Delivered(str(sent.message_id), str(chat_id), file_ref)

    async def failed(self, job: Job, reason: i18n.Message | str) -> None:
        text = texts.failed(job, reason, await self.job_lang(job))
        status = self._finish(job.id)
        if status is not None:
            try:
                await self._app.bot.edit_message_text(
                    text, chat_id=status.chat_id, message_id=status.message_id
                )
            except TelegramError:
                pass  # the status message is gone: say it in a new message below
            else:
                return
        await self._app.bot.send_message(
            int(job.requester.channel_id),
            text,
            reply_parameters=tg.reply_to(job.requester.reply_to),
        )

    # ----- results -----
    async def deliver_text(self, job: Job) -> Delivered:
        """A describe's result as plain text (no parse mode: nothing in it is markup)."""
        chat_id = int(job.requester.channel_id)
        lang = await self.job_lang(job)
        text = i18n.t("vlm.described", lang, job=job.id, text=job.text or "")
        sent: Message = await self._app.bot.send_message(
            chat_id,
            texts.shorten(text, texts.MESSAGE_LIMIT),
            reply_markup=describe_keyboard(job, lang),
            reply_parameters=tg.reply_to(job.requester.reply_to),
        )
        await self._clear(job.id)
        return Delivered(str(sent.message_id), str(chat_id))

    async def send_result(
        self,
        job: Job,
        chat_id: int,
        image: bytes | str,
        reply_to: str | int | None,
        lang: str | None = None,
    ) -> Message:
        """The image (bytes, or Telegram's ``file_id`` of it) with its caption and buttons, in
        ``lang`` (by default the job's: see :meth:`job_lang`)."""
        lang = lang or await self.job_lang(job)
        caption = texts.caption(job, await self._community.remix_credit(job, lang), lang)
        keyboard = await self._keyboard(job, lang)
        name, reply = f"turbobot-{job.id}.jpg", tg.reply_to(reply_to)
        sent: Message  # PTB's Application is generic in Any: name what comes back
        if isinstance(image, bytes) and not fits_as_photo(image):
            sent = await self._app.bot.send_document(
                chat_id,
                document=image,
                filename=name,
                caption=caption,
                reply_markup=keyboard,
                reply_parameters=reply,
            )
        else:
            sent = await self._app.bot.send_photo(
                chat_id,
                photo=image,
                filename=name,
                caption=caption,
                has_spoiler=job.spoiler,  # flagged by the safety check
                reply_markup=keyboard,
                reply_parameters=reply,
            )
        return sent

    async def _keyboard(self, job: Job, lang: str) -> InlineKeyboardMarkup:
        """A grid's U/V buttons, or the buttons under one image."""
        if is_grid(job):
            return grid_keyboard(job, lang)
        showcase, outside = await self._community.share_options(job)
        return result_keyboard(job, showcase=showcase, share_outside=outside, lang=lang)

    def file_ref(self, job: Job) -> str | None:
        """Telegram's ``file_id`` of a posted image (None when deleted or not posted)."""
        if job.state != JobState.POSTED or self._core.image_file(job) is None:
            return None  # not posted yet, or deleted by its owner
        return job.posted_file_ref or self._file_refs.get(job.id)

    async def job_lang(self, job: Job) -> str:
        """The core's rule for a job's messages: the group's language when it chose one, else
        the requester's own, stored with the job (so also after a restart)."""
        return await self._community.server_lang(job.requester.server_id, job.requester.language)

    def _finish(self, job_id: int) -> _Status | None:
        self._finished.put(job_id, True)
        return self._status.pop(job_id)

    async def _clear(self, job_id: int) -> None:
        status = self._finish(job_id)
        if status is None:
            return
        try:
            await self._app.bot.delete_message(status.chat_id, status.message_id)
        except TelegramError as err:  # cosmetic: the result is already posted
            log.debug("telegram: could not delete status of job %s: %s", job_id, err)
