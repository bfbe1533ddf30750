"""The Telegram adapter: translates between python-telegram-bot and the core, nothing more.

Commands come in by long polling (or, with ``TELEGRAM_WEBHOOK_URL``, through PTB's webhook
server: see :mod:`adapters.telegram.webhook`) and become core calls; the core calls back
through the :class:`bot.ports.Notifier` methods (``progress``, ``deliver``, ``failed``). The
lifecycle is explicit — ``initialize / start / updater.start_polling`` (or ``start_webhook``)
… ``updater.stop / stop / shutdown`` — because the composition root owns the event loop
(never ``run_polling()`` / ``run_webhook()``).

State that must survive a restart lives in the core: a button carries only a job id, and the
photo ``file_id`` used for inline sharing goes back to the core in :class:`Delivered`. What is
kept here (status messages being edited, recently seen file ids) is a convenience that may be
lost without losing anything a user needs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    InlineKeyboardMarkup,
    InlineQueryResultCachedPhoto,
    Message,
    Update,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    Updater,
    filters,
)
from telegram.request import BaseRequest, HTTPXRequest

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.fitting import FittingBot
from adapters.telegram.keyboards import (
    Action,
    Callback,
    cancel_keyboard,
    decode,
    page_count,
    resolve_style,
    result_keyboard,
    style_keyboard,
)
from adapters.telegram.updates import Ctx, Handler, Ignored
from adapters.telegram.webhook import Webhook, webhook_from
from bot import i18n
from bot.commands import split_command
from bot.config import Settings
from bot.domain import (
    Delivered,
    DeriveKind,
    GenerateRequest,
    Job,
    JobAction,
    JobState,
    Language,
    Platform,
    Requester,
    Ticket,
)
from bot.errors import NotAllowed, NotFound, TurbobotError
from bot.i18n import language_of, t
from bot.ports import BotApi
from bot.texts import styles_rescanned
from bot.validation import NO_STYLE

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.5  # Telegram allows about one message per second per chat
RATE_LIMIT_RETRIES = 5  # a 429 is retried after its retry_after this many times
PHOTO_LIMIT_BYTES = 10 * 1024 * 1024  # larger images go out as documents
INLINE_RESULTS = 50  # Telegram's maximum per answer
REMEMBERED_JOBS = 2048
TELEGRAM_API = "https://api.telegram.org"  # PTB's default server
ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]
_JOB_REF = re.compile(r"#?(\d{1,12})")

TgApp = Application[Any, Any, Any, Any, Any, Any]
K = TypeVar("K")
V = TypeVar("V")


# Loggers that may see the token: PTB logs its API URLs (token included) at DEBUG, and
# httpx logs every request URL at INFO. PTB also logs setWebhook's parameters (the webhook
# secret among them) at DEBUG. Records are redacted where they are created.
_TOKEN_LOGGERS = (
    "httpx",
    "httpcore",
    "telegram",
    "telegram.Bot",
    "telegram.ext",
    "telegram.ext.ExtBot",
    "telegram.ext.Application",
    "telegram.ext.Updater",
    "telegram.ext.AIORateLimiter",
)


class _RedactToken(logging.Filter):
    """Replaces the bot token (and the webhook secret) in a log record's message and traceback.

    ``secrets`` maps each secret to the placeholder logged instead.
    """

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__()
        self._secrets = {secret: shown for secret, shown in secrets.items() if secret}

    def _redacted(self, text: str) -> str:
        for secret, shown in self._secrets.items():
            text = text.replace(secret, shown)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redacted(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redacted(record.exc_text)
        return True


class TelegramStartError(RuntimeError):
    """The adapter could not connect; the message is safe to log (it holds no token)."""


@dataclass(slots=True)
class _Status:
    """The "queued / generating" message of a job, edited with progress."""

    chat_id: int
    message_id: int
    edited_at: float


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


class _PollRequest(HTTPXRequest):
    """The long-poll connection; remembers whether the last getUpdates reached Telegram
    (what ``/healthz`` reports). PTB's own loop retries failures."""

    reached = True

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            status, payload = await super().do_request(*args, **kwargs)
        except Exception:
            self.reached = False
            raise
        self.reached = 200 <= status < 300
        return status, payload


def api_urls(base_url: str) -> tuple[str, str]:
    """``TELEGRAM_API_BASE_URL`` (a server root or ``…/bot``) → PTB's base_url, base_file_url."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def build_application(settings: Settings, requests: tuple[BaseRequest, BaseRequest]) -> TgApp:
    """A PTB application with flood control that waits out every ``retry_after``.

    ``requests`` (for API calls, for getUpdates) are passed in so their owner can close them
    even when the application never finished initialising.
    """
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_TOKEN is not set")
    base_url, file_url = api_urls(settings.telegram_api_base_url or TELEGRAM_API)
    # Every text goes out through FittingBot: the one place it is fitted to Telegram's limits.
    bot = FittingBot(
        settings.telegram_token.get_secret_value(),
        base_url=base_url,
        base_file_url=file_url,
        request=requests[0],
        get_updates_request=requests[1],
        rate_limiter=AIORateLimiter(max_retries=RATE_LIMIT_RETRIES),
    )
    builder = ApplicationBuilder().bot(bot).concurrent_updates(True).job_queue(None)
    return builder.build()


async def _start_webhook(updater: Updater, hook: Webhook) -> None:
    """setWebhook, then PTB's server on the local address (stopped by ``updater.stop()``).

    Pending updates are kept: Telegram holds them while the bot restarts and delivers them now.
    """
    try:
        await updater.start_webhook(
            listen=hook.listen,
            port=hook.port,
            url_path=hook.url_path,
            secret_token=hook.secret,
            webhook_url=hook.url,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise TelegramStartError(
            f"telegram: cannot listen for the webhook on {hook.listen}:{hook.port}"
            f" ({err.strerror or err}); check TELEGRAM_WEBHOOK_LISTEN / TELEGRAM_WEBHOOK_PORT"
        ) from None


class TelegramAdapter:
    """Telegram chat adapter; a :class:`bot.ports.ChatAdapter` for the composition root.

    ``monotonic`` paces progress edits (injected so tests control time).
    """

    def __init__(
        self,
        core: BotApi,
        settings: Settings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        # Checked first: a webhook that cannot work stops the bot before anything connects.
        self._webhook = webhook_from(settings)
        # httpx logs every request URL at INFO, and the bot token is part of every URL.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._redact = _RedactToken(
            {
                settings.telegram_token.get_secret_value(): "<TELEGRAM_TOKEN>",
                self._webhook.secret if self._webhook else "": "<TELEGRAM_WEBHOOK_SECRET>",
            }
        )
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).addFilter(self._redact)
        self._core = core
        self._settings = settings
        self._monotonic = monotonic
        # PTB's defaults: a wide pool for API calls, one connection for the long poll.
        self._requests = (
            HTTPXRequest(connection_pool_size=256),
            _PollRequest(connection_pool_size=1),
        )
        self._app = build_application(settings, self._requests)
        self._status: _Recent[int, _Status] = _Recent()
        self._finished: _Recent[int, bool] = _Recent()
        self._file_refs: _Recent[int, str] = _Recent()
        self._intake_open = False
        self._buttons: dict[Action, Callable[[Update, Callback], Awaitable[str | None]]] = {
            Action.REROLL: self._on_reroll,
            Action.VARIATION: self._on_variation,
            Action.RESTYLE: self._on_restyle,
            Action.RESTYLE_PAGE: self._on_restyle_page,
            Action.RESTYLE_PICK: self._on_restyle_pick,
            Action.ORIGINAL: self._on_original,
            Action.DELETE: self._on_delete,
            Action.CANCEL: self._on_cancel_button,
            Action.STYLE_PAGE: self._on_style_page,
            Action.STYLE_PICK: self._on_style_pick,
            Action.STYLE_CLEAR: self._on_style_clear,
        }
        self._community = Community(
            core, self._app, file_ref=self._file_ref, post_status=self._post_status
        )
        self._buttons.update(self._community.buttons())
        self._add_handlers()

    @property
    def platform(self) -> Platform:
        return Platform.TELEGRAM

    @property
    def connected(self) -> bool:
        """Polling (or the webhook server) runs and the last getUpdates reached Telegram.
        PTB retries a failing poll by itself; the next good answer makes this True again."""
        updater = self._app.updater
        running = self._app.running and updater is not None and updater.running
        return running and self._requests[1].reached

    # ----- lifecycle -----
    async def start(self) -> None:
        """Connect (getMe), publish the command menus, and begin long polling — or, with
        ``TELEGRAM_WEBHOOK_URL``, register the webhook and listen for Telegram's calls."""
        try:
            await self._connect()
        except InvalidToken:
            await self.aclose()
            # PTB's message quotes the token itself: replace it, and drop it from the chain.
            raise TelegramStartError(
                "Telegram rejected TELEGRAM_TOKEN: check it with @BotFather"
                " (and TELEGRAM_API_BASE_URL, if set)."
            ) from None
        except BaseException:
            await self.aclose()
            raise
        if self._webhook is None:
            log.info("telegram: connected as @%s, long polling", self._app.bot.username)
        else:
            hook = self._webhook
            log.info(
                "telegram: connected as @%s, webhook %s served on %s:%d",
                self._app.bot.username,
                hook.url,
                hook.listen,
                hook.port,
            )

    async def _connect(self) -> None:
        app = self._app
        await app.initialize()
        await self._publish_commands()
        await app.start()
        self._intake_open = True
        if app.updater is None:  # ApplicationBuilder always builds one
            raise RuntimeError("telegram: no updater to poll with")
        if self._webhook is None:
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        else:
            await _start_webhook(app.updater, self._webhook)

    async def stop_intake(self) -> None:
        """New commands get a polite refusal; deliveries of jobs in flight still go out."""
        self._intake_open = False

    async def aclose(self) -> None:
        self._intake_open = False
        app = self._app
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        for request in self._requests:  # PTB skips these when initialize() failed half-way
            await request.shutdown()
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)

    async def _publish_commands(self) -> None:
        bot = self._app.bot
        # A scope's menu replaces the default one: admins get every command.
        admins = BotCommandScopeAllChatAdministrators()
        for lang, code in ((Language.EN, None), (Language.ZH, "zh")):
            everyone = [BotCommand(n, d) for n, d in texts.menu(texts.COMMANDS, lang)]
            extra = [BotCommand(n, d) for n, d in texts.menu(texts.ADMIN_COMMANDS, lang)]
            await bot.set_my_commands(everyone, language_code=code)
            await bot.set_my_commands([*everyone, *extra], scope=admins, language_code=code)

    def _add_handlers(self) -> None:
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
            **self._community.commands(),
        }
        for name, handler in commands.items():
            # Only new messages: an edited "/imagine" must not queue a second job.
            guarded = self._boundary(name, self._gated(handler))
            self._app.add_handler(CommandHandler(name, guarded, filters.UpdateType.MESSAGE))
        self._app.add_handler(CallbackQueryHandler(self._boundary("button", self._button)))
        self._app.add_handler(InlineQueryHandler(self._boundary("inline", self._inline)))

    # ----- the error boundary -----
    def _boundary(self, name: str, handler: Handler) -> Handler:
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
                await self._tell(update, t("telegram.something_wrong", tg.language(update)))

        return guarded

    def _gated(self, handler: Handler) -> Handler:
        async def gated(update: Update, context: Ctx) -> None:
            if not self._intake_open:
                await self._tell(update, t("telegram.intake_closed", tg.language(update)))
                return
            await handler(update, context)

        return gated

    async def _error_lang(self, update: Update) -> str:
        """Core errors follow the chat's language (the user's own when that is unreadable)."""
        try:
            return await self._lang(update)
        except TurbobotError:
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
        if not rest:
            await message.reply_text(t("telegram.imagine_usage", await self._lang(update)))
            return
        # The core parses the options typed in the prompt (the same on every platform).
        ticket = await self._core.submit(GenerateRequest(tg.requester(update), rest))
        await self._post_status(ticket, message.chat_id, message.message_id)

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
            reply_markup=style_keyboard(styles, 0, tg.language(update)),
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
        if rest:
            match = _JOB_REF.fullmatch(rest)
            if match is None:
                await message.reply_text(t("telegram.cancel_usage", await self._lang(update)))
                return
            job_id = int(match.group(1))
        else:
            waiting = [job.id for job, pos in await self._core.queue_of(requester) if pos > 0]
            if not waiting:
                await message.reply_text(t("telegram.nothing_to_cancel", await self._lang(update)))
                return
            job_id = max(waiting)  # the newest, as in the console
        await self._core.cancel(requester, job_id)
        await message.reply_text(t("telegram.cancelled", await self._lang(update), job=job_id))

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
        ref = self._file_ref(job)  # Telegram's copy when there is one: no re-upload
        image = ref if ref is not None else await asyncio.to_thread(path.read_bytes)
        await self._send_result(job, message.chat_id, image, message.message_id)

    async def _help(self, update: Update, context: Ctx) -> None:
        username = self._app.bot.username or "bot"
        await tg.message(update).reply_text(texts.help_text(tg.language(update), username))

    # ----- buttons -----
    async def _button(self, update: Update, context: Ctx) -> None:
        query = update.callback_query
        if query is None:
            raise Ignored
        callback = decode(query.data)
        if callback is None:
            await query.answer(t("telegram.stale_button", tg.language(update)))
            return
        if not self._intake_open:
            await query.answer(t("telegram.intake_closed", tg.language(update)), show_alert=True)
            return
        try:
            answer = await self._buttons[callback.action](update, callback)
        except (ValueError, IndexError):  # malformed data: a forged or very old button
            answer = t("telegram.stale_button", tg.language(update))
        await query.answer(texts.shorten(answer, texts.CALLBACK_ANSWER_LIMIT) if answer else None)

    async def _on_reroll(self, update: Update, callback: Callback) -> str:
        ticket = await self._core.derive(
            tg.requester(update), callback.int_arg(0), DeriveKind.REROLL
        )
        return await self._queued_from_button(update, ticket)

    async def _on_variation(self, update: Update, callback: Callback) -> str:
        ticket = await self._core.derive(tg.requester(update), callback.int_arg(0), DeriveKind.VARY)
        return await self._queued_from_button(update, ticket)

    async def _on_restyle(self, update: Update, callback: Callback) -> str | None:
        job_id = callback.int_arg(0)
        styles = self._core.styles()
        if not styles:
            return texts.no_styles(await self._lang(update))
        message = tg.message(update)
        await message.reply_text(
            texts.restyle_picker(job_id, 0, page_count(styles), await self._lang(update)),
            reply_markup=style_keyboard(styles, 0, tg.language(update), job_id=job_id),
        )
        return None

    async def _on_restyle_page(self, update: Update, callback: Callback) -> None:
        job_id, page = callback.int_arg(0), callback.page_arg(1)
        styles = self._core.styles()
        page = min(page, page_count(styles) - 1)
        await self._edit_picker(
            update,
            texts.restyle_picker(job_id, page, page_count(styles), await self._lang(update)),
            style_keyboard(styles, page, tg.language(update), job_id=job_id),
        )

    async def _on_restyle_pick(self, update: Update, callback: Callback) -> str:
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
        await self._adopt_status(ticket.job.id, message.chat_id, message.message_id, sent_at)
        return texts.queued(ticket, lang)

    async def _on_original(self, update: Update, callback: Callback) -> str | None:
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

    async def _on_delete(self, update: Update, callback: Callback) -> str:
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

    async def _on_cancel_button(self, update: Update, callback: Callback) -> str:
        job = await self._core.cancel(tg.requester(update), callback.int_arg(0))
        return t("telegram.cancelled", await self._lang(update), job=job.id)

    async def _on_style_page(self, update: Update, callback: Callback) -> None:
        styles = self._core.styles()
        page = min(callback.page_arg(0), page_count(styles) - 1)
        current = await self._core.default_style(tg.requester(update))
        await self._edit_picker(
            update,
            texts.style_picker(current, page, page_count(styles), await self._lang(update)),
            style_keyboard(styles, page, tg.language(update)),
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

    async def _edit_picker(self, update: Update, text: str, keyboard: InlineKeyboardMarkup) -> None:
        await tg.message(update).edit_text(text, reply_markup=keyboard)

    async def _queued_from_button(self, update: Update, ticket: Ticket) -> str:
        message = tg.message(update)
        await self._post_status(ticket, message.chat_id, message.message_id)
        return texts.queued(ticket, await self._lang(update))

    # ----- inline mode -----
    async def _inline(self, update: Update, context: Ctx) -> None:
        query = update.inline_query
        if query is None:
            raise Ignored
        shared = await self._shareable(tg.requester(update), query.query.strip())
        results = [
            InlineQueryResultCachedPhoto(
                id=str(job.id), photo_file_id=ref, caption=texts.caption(job)
            )
            for job, ref in shared[:INLINE_RESULTS]
        ]
        await query.answer(results, cache_time=5, is_personal=True)

    async def _shareable(self, requester: Requester, text: str) -> list[tuple[Job, str]]:
        """The requester's posted images matching ``text`` ("#42" is job 42), newest first."""
        match = _JOB_REF.fullmatch(text) if text.startswith("#") else None
        if match is not None:
            try:
                job_id = int(match.group(1))
                jobs = [await self._core.job_for(requester, job_id, JobAction.VIEW)]
            except NotFound:
                return []
            jobs = [j for j in jobs if j.requester.user_key == requester.user_key]
        else:
            words = text.casefold().split()
            jobs = await self._core.history(requester, limit=INLINE_RESULTS)
            jobs = [j for j in jobs if all(w in j.spec.prompt.casefold() for w in words)]
        jobs = await self._community.shareable(requester, jobs)
        return [(job, ref) for job in jobs if (ref := self._file_ref(job)) is not None]

    def _file_ref(self, job: Job) -> str | None:
        if job.state != JobState.POSTED or self._core.image_file(job) is None:
            return None  # not posted yet, or deleted by its owner
        return job.posted_file_ref or self._file_refs.get(job.id)

    # ----- notifier: the core talks back -----
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
                texts.generating(job, step, total, await self._job_lang(job)),
                chat_id=status.chat_id,
                message_id=status.message_id,
            )
        except TelegramError as err:  # progress is best effort; the result still arrives
            log.debug("telegram: progress edit for job %s failed: %s", job.id, err)

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        chat_id = int(job.requester.channel_id)
        jpeg = await asyncio.to_thread(Path(jpeg_path).read_bytes)
        sent = await self._send_result(job, chat_id, jpeg, job.requester.reply_to)
        await self._clear_status(job.id)
        file_ref = sent.photo[-1].file_id if sent.photo else None
        if file_ref is not None:
            self._file_refs.put(job.id, file_ref)
        return Delivered(str(sent.message_id), str(chat_id), file_ref)

    async def _send_result(
        self, job: Job, chat_id: int, image: bytes | str, reply_to: str | int | None
    ) -> Message:
        """The image (bytes, or Telegram's ``file_id`` of it) with its caption and buttons."""
        lang = await self._job_lang(job)
        caption = texts.caption(job, await self._community.remix_credit(job), lang)
        showcase, outside = await self._community.share_options(job)
        keyboard = result_keyboard(job, showcase=showcase, share_outside=outside, lang=lang)
        name, reply = f"turbobot-{job.id}.jpg", tg.reply_to(reply_to)
        sent: Message
        if isinstance(image, bytes) and len(image) > PHOTO_LIMIT_BYTES:
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
                reply_markup=keyboard,
                reply_parameters=reply,
            )
        return sent

    async def failed(self, job: Job, reason: i18n.Message | str) -> None:
        text = texts.failed(job, reason, await self._job_lang(job))
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

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        # Telegram refuses some deletions (e.g. old messages in some chats): the core logs it.
        await self._app.bot.delete_message(int(channel_id), int(message_id))

    # ----- status messages -----
    async def _post_status(self, ticket: Ticket, chat_id: int, reply_to: int) -> None:
        if ticket.job.id in self._finished:
            return  # already delivered (an idle GPU is fast): no stale "queued" message
        sent_at = self._monotonic()
        text = texts.queued(ticket, await self._job_lang(ticket.job))
        sent = await self._app.bot.send_message(
            chat_id, text, reply_parameters=tg.reply_to(reply_to)
        )
        await self._adopt_status(ticket.job.id, chat_id, sent.message_id, sent_at)

    async def _adopt_status(
        self, job_id: int, chat_id: int, message_id: int, sent_at: float
    ) -> None:
        """Edit this message with the job's progress from now on (``sent_at`` starts the
        throttle); if the job finished while the message was being sent, remove it."""
        self._status.put(job_id, _Status(chat_id, message_id, sent_at))
        if job_id in self._finished:
            await self._clear_status(job_id)

    async def _job_lang(self, job: Job) -> str:
        """The language of the chat a job was asked in (its group's setting)."""
        return await self._community.server_lang(job.requester.server_id)

    def _finish(self, job_id: int) -> _Status | None:
        self._finished.put(job_id, True)
        return self._status.pop(job_id)

    async def _clear_status(self, job_id: int) -> None:
        status = self._finish(job_id)
        if status is None:
            return
        try:
            await self._app.bot.delete_message(status.chat_id, status.message_id)
        except TelegramError as err:  # cosmetic: the result is already posted
            log.debug("telegram: could not delete status of job %s: %s", job_id, err)
