"""Telegram updates in, core calls out: every command, button and inline query handler.

Each handler reads the update into core types (:mod:`adapters.telegram.updates`), asks the
core, and answers in the chat's language. :meth:`Handlers.boundary` is the one error
boundary: a ``TurbobotError`` becomes a reply with its text; anything else is logged once,
with context and no secrets, and the user is told that something went wrong.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from telegram import Message, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.describe import Describe
from adapters.telegram.inline import InlineShare
from adapters.telegram.iterate import Iteration, carries_picture
from adapters.telegram.job_buttons import Button, JobButtons
from adapters.telegram.keyboards import (
    Action,
    Callback,
    cancel_keyboard,
    decode,
    page_count,
    resolve_style,
    style_keyboard,
)
from adapters.telegram.status import StatusMessages
from adapters.telegram.updates import Ctx, Handler, Ignored
from bot.commands import split_command
from bot.domain import GenerateRequest, JobAction
from bot.errors import NotFound, TurbobotError
from bot.i18n import language_of, t
from bot.ports import BotApi
from bot.texts import styles_rescanned, vlm_lines
from bot.validation import NO_STYLE

log = logging.getLogger(__name__)

_JOB_REF = re.compile(r"#?(\d{1,12})")
# A photo or image file whose caption is an /imagine command (CommandHandler reads text only).
_IMAGINE_CAPTION = filters.CaptionRegex(r"^/imagine(@\w+)?(\s|$)")
_PICTURE = filters.PHOTO | filters.Document.IMAGE
# A plain text reply (to the bot: checked in the handler): a remix's edited prompt.
_TEXT_REPLY = filters.TEXT & filters.REPLY & ~filters.COMMAND & filters.UpdateType.MESSAGE

TgApp = Application[Any, Any, Any, Any, Any, Any]
DESCRIBE_GROUP = 1  # PTB handler group of the describe message handlers


class Handlers:
    """Translates updates to core calls; ``intake_open`` is switched by the adapter's lifecycle.

    ``monotonic`` starts the progress throttle of a status message adopted from a picker.
    """

    def __init__(
        self,
        core: BotApi,
        app: TgApp,
        community: Community,
        status: StatusMessages,
        monotonic: Callable[[], float],
    ) -> None:
        self._core = core
        self._app = app
        self._community = community
        self._status = status
        self._inline = InlineShare(core, community, status).answer
        self._iteration = Iteration(core, app, community, status)
        self.intake_open = False
        self._describe = Describe(core, status, self._lang)
        self._buttons: dict[Action, Button] = {
            **self._describe.buttons(),
            **JobButtons(
                core, app, community, status, monotonic=monotonic, lang=self._lang
            ).buttons(),
            Action.STYLE_PAGE: self._on_style_page,
            Action.STYLE_PICK: self._on_style_pick,
            Action.STYLE_CLEAR: self._on_style_clear,
            **community.buttons(),
            **self._iteration.buttons(),
        }

    def register(self) -> None:
        """Adds every handler to the application (before it starts)."""
        commands: dict[str, Handler] = {
            "imagine": self._imagine,
            "style": self._style,
            "styles": self._styles,
            "history": self._history,
            "queue": self._queue,
            "cancel": self._cancel,
            "show": self._show,
            "start": self._help,
            "help": self._help,
            "describe": self._describe.command,
            **self._community.commands(),
        }
        for name, handler in commands.items():
            # Only new messages: an edited "/imagine" must not queue a second job.
            guarded = self.boundary(name, self._gated(handler))
            self._app.add_handler(CommandHandler(name, guarded, filters.UpdateType.MESSAGE))
        pictures = _PICTURE & _IMAGINE_CAPTION & filters.UpdateType.MESSAGE
        on_photo = self.boundary("imagine_photo", self._gated(self._iteration.on_photo))
        self._app.add_handler(MessageHandler(pictures, on_photo))
        on_reply = self.boundary("remix_reply", self._remix_reply)
        self._app.add_handler(MessageHandler(_TEXT_REPLY, on_reply))
        # Their own group: a reply that is not an answer to "Edit first" goes on to the others.
        for described in self._describe.handlers(self._describe_guard):
            self._app.add_handler(described, group=DESCRIBE_GROUP)
        self._app.add_handler(CallbackQueryHandler(self.boundary("button", self._button)))
        self._app.add_handler(InlineQueryHandler(self.boundary("inline", self._inline)))

    # ----- the error boundary -----
    def boundary(self, name: str, handler: Handler) -> Handler:
        """User errors become replies; anything unexpected is logged once, with context."""

        async def guarded(update: Update, context: Ctx) -> None:
            try:
                await handler(update, context)
            except Ignored:
                return
            except TurbobotError as err:
                await self._tell(update, err.render(await self._error_lang(update)))
            except Exception:
                user = update.effective_user
                chat = update.effective_chat
                log.exception(
                    "telegram: %s failed (update %s, user %s, chat %s)",
                    name,
                    update.update_id,
                    user.id if user else None,
                    chat.id if chat else None,
                )
                lang = await self._error_lang(update)
                await self._tell(update, t("telegram.something_wrong", lang))

        return guarded

    def _describe_guard(self, name: str, handler: Handler) -> Handler:
        # No intake gate: the core refuses new jobs while stopping, and most replies seen
        # here are not ours to answer.
        return self.boundary(name, handler)

    def _gated(self, handler: Handler) -> Handler:
        async def gated(update: Update, context: Ctx) -> None:
            if not self.intake_open:
                await self._tell(
                    update, t("telegram.intake_closed", await self._error_lang(update))
                )
                return
            await handler(update, context)

        return gated

    async def _error_lang(self, update: Update) -> str:
        """:meth:`_lang`, or the user's own when the group's setting cannot be read."""
        try:
            return await self._lang(update)
        except Exception:  # the error being reported may be the store's own
            return str(language_of(tg.language(update)))

    async def _lang(self, update: Update) -> str:
        """The language to answer in: the group's setting, in private the user's own."""
        return await self._community.lang(update)

    async def _tell(self, update: Update, text: str) -> None:
        """Answer whatever the user did with ``text`` (an alert for a button press)."""
        if update.callback_query is not None:
            short = texts.shorten(text, texts.CALLBACK_ANSWER_LIMIT)
            await update.callback_query.answer(short, show_alert=True)
        elif update.inline_query is not None:
            await update.inline_query.answer([], cache_time=0, is_personal=True)
        elif isinstance(update.effective_message, Message):
            await update.effective_message.reply_text(texts.shorten(text, texts.MESSAGE_LIMIT))

    # ----- commands -----
    async def _imagine(self, update: Update, context: Ctx) -> None:
        message = tg.message(update)
        _, rest = split_command(message.text or "")
        source = message.reply_to_message
        if source is not None and carries_picture(source):
            # "/imagine ..." in reply to a photo: start from that photo.
            await self._iteration.imagine_from(update, source, rest)
            return
        if not rest:
            await message.reply_text(t("telegram.imagine_usage", await self._lang(update)))
            return
        # The core parses the options typed in the prompt (the same on every platform).
        ticket = await self._core.submit(GenerateRequest(tg.requester(update), rest))
        await self._status.post(
            ticket, message.chat_id, message.message_id, await self._lang(update)
        )

    async def _style(self, update: Update, context: Ctx) -> None:
        message = tg.message(update)
        requester = tg.requester(update)
        _, rest = split_command(message.text or "")
        if rest:
            name = None if rest.strip().lower() in NO_STYLE else rest
            await self._core.set_default_style(requester, name)
            await message.reply_text(texts.style_set(name, await self._lang(update)))
            return
        styles = self._core.styles()
        if not styles:
            await message.reply_text(texts.no_styles(await self._lang(update)))
            return
        current = await self._core.default_style(requester)
        await message.reply_text(
            texts.style_picker(current, 0, page_count(styles), await self._lang(update)),
            reply_markup=style_keyboard(styles, 0, await self._lang(update)),
        )

    async def _styles(self, update: Update, context: Ctx) -> None:
        """``/styles rescan``: operators only (the core checks ``TURBOBOT_OPERATOR_IDS``)."""
        message = tg.message(update)
        _, rest = split_command(message.text or "")
        lang = await self._lang(update)
        if rest.strip().lower() != "rescan":
            await message.reply_text(t("telegram.styles_usage", lang))
            return
        changes = await self._core.rescan_styles(tg.requester(update))
        await message.reply_text(styles_rescanned(changes).render(lang))

    async def _history(self, update: Update, context: Ctx) -> None:
        jobs = await self._core.history(tg.requester(update), limit=10)
        await tg.message(update).reply_text(texts.history(jobs, await self._lang(update)))

    async def _queue(self, update: Update, context: Ctx) -> None:
        entries = await self._core.queue_of(tg.requester(update))
        eta = {job.id: self._core.eta_for_position(pos) for job, pos in entries}
        waiting = [job.id for job, pos in entries if pos > 0]
        lang = await self._lang(update)
        await tg.message(update).reply_text(
            texts.queue(entries, eta, lang), reply_markup=cancel_keyboard(waiting, lang)
        )

    async def _cancel(self, update: Update, context: Ctx) -> None:
        message = tg.message(update)
        requester = tg.requester(update)
        _, rest = split_command(message.text or "")
        job_id = None  # alone: the core picks the newest waiting job, as on every platform
        if rest:
            match = _JOB_REF.fullmatch(rest)
            if match is None:
                await message.reply_text(t("telegram.cancel_usage", await self._lang(update)))
                return
            job_id = int(match.group(1))
        job = await self._core.cancel(requester, job_id)
        await message.reply_text(t("telegram.cancelled", await self._lang(update), job=job.id))

    async def _show(self, update: Update, context: Ctx) -> None:
        """``/show 42``: post an earlier image again (Telegram has no other way to fetch one,
        e.g. after a crash mid-send pointed the user to /history)."""
        message = tg.message(update)
        _, rest = split_command(message.text or "")
        match = _JOB_REF.fullmatch(rest.strip())
        if match is None:
            await message.reply_text(t("telegram.show_usage", await self._lang(update)))
            return
        # Who may re-post it (and how often) is the core's rule.
        job = await self._core.job_for(tg.requester(update), int(match.group(1)), JobAction.SHOW)
        path = self._core.image_file(job)
        if path is None:
            raise NotFound(texts.no_image(job.id, await self._lang(update)))
        ref = self._status.file_ref(job)  # Telegram's copy when there is one: no re-upload
        image = ref if ref is not None else await asyncio.to_thread(path.read_bytes)
        lang = await self._lang(update)
        await self._status.send_result(job, message.chat_id, image, message.message_id, lang)
        parents = await self._core.lineage(tg.requester(update), job.id)
        if parents:
            await message.reply_text(texts.lineage(parents, lang))

    async def _remix_reply(self, update: Update, context: Ctx) -> None:
        """A text reply to the bot: a remix when it answers a prompt message. Gated only
        then, so replies between people never get a "closed" answer while shutting down."""
        job_id = self._iteration.reply_target(update)
        if not self.intake_open:
            await self._tell(update, t("telegram.intake_closed", await self._error_lang(update)))
            return
        await self._iteration.remix_reply(update, job_id)

    async def _help(self, update: Update, context: Ctx) -> None:
        username = self._app.bot.username or "bot"
        lang = await self._lang(update)
        lines = vlm_lines(self._core.vlm_availability(), lang)
        text = "\n".join([texts.help_text(lang, username), "", *lines])
        await tg.message(update).reply_text(texts.shorten(text, texts.MESSAGE_LIMIT))

    # ----- buttons -----
    async def _button(self, update: Update, context: Ctx) -> None:
        query = update.callback_query
        if query is None:
            raise Ignored
        callback = decode(query.data)
        if callback is None:
            await query.answer(t("telegram.stale_button", await self._error_lang(update)))
            return
        if not self.intake_open:
            closed = t("telegram.intake_closed", await self._error_lang(update))
            await query.answer(closed, show_alert=True)
            return
        try:
            answer = await self._buttons[callback.action](update, callback)
        except (ValueError, IndexError):  # malformed data: a forged or very old button
            answer = t("telegram.stale_button", await self._error_lang(update))
        await query.answer(texts.shorten(answer, texts.CALLBACK_ANSWER_LIMIT) if answer else None)

    async def _on_style_page(self, update: Update, callback: Callback) -> None:
        styles = self._core.styles()
        page = min(callback.page_arg(0), page_count(styles) - 1)
        current = await self._core.default_style(tg.requester(update))
        lang = await self._lang(update)
        await tg.message(update).edit_text(
            texts.style_picker(current, page, page_count(styles), lang),
            reply_markup=style_keyboard(styles, page, lang),
        )

    async def _on_style_pick(self, update: Update, callback: Callback) -> str:
        style = resolve_style(callback.args[0], self._core.styles())
        if style is None:
            return t("telegram.style_gone", await self._lang(update))
        return await self._set_style(update, style)

    async def _on_style_clear(self, update: Update, callback: Callback) -> str:
        return await self._set_style(update, None)

    async def _set_style(self, update: Update, style: str | None) -> str:
        await self._core.set_default_style(tg.requester(update), style)
        text = texts.style_set(style, await self._lang(update))
        await tg.message(update).edit_text(text)
        return text
