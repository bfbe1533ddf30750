"""The Telegram adapter's lifecycle and the core's notifier; shaped like the Discord one.

:mod:`~adapters.telegram.handlers` turns updates into core calls,
:mod:`~adapters.telegram.status` posts "queued", progress and results,
:mod:`~adapters.telegram.community` serves the community commands.

Commands come in by long polling (or, with ``TELEGRAM_WEBHOOK_URL``, through PTB's webhook
server: see :mod:`adapters.telegram.webhook`) and become core calls; the core calls back
through the :class:`bot.ports.Notifier` methods (``progress``, ``deliver``, ``failed``). The
lifecycle is explicit — ``initialize / start / updater.start_polling`` (or ``start_webhook``)
… ``updater.stop / stop / shutdown`` — because the composition root owns the event loop
(never ``run_polling()`` / ``run_webhook()``).

State that must survive a restart lives in the core: a button carries only a job id, and the
photo ``file_id`` used for inline sharing goes back to the core in :class:`Delivered`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from telegram import BotCommand, BotCommandScopeAllChatAdministrators
from telegram.error import InvalidToken
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Updater
from telegram.request import BaseRequest, HTTPXRequest

from adapters.telegram import texts
from adapters.telegram.community import Community
from adapters.telegram.fitting import FittingBot
from adapters.telegram.handlers import Handlers
from adapters.telegram.status import StatusMessages
from adapters.telegram.webhook import Webhook, webhook_from
from bot import i18n
from bot.domain import Delivered, Job, Language, Platform, Ticket
from bot.ports import BotApi
from bot.slices import TelegramSettings

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 5  # a 429 is retried after its retry_after this many times
TELEGRAM_API = "https://api.telegram.org"  # PTB's default server
ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]

TgApp = Application[Any, Any, Any, Any, Any, Any]


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


def build_application(
    settings: TelegramSettings, requests: tuple[BaseRequest, BaseRequest]
) -> TgApp:
    """A PTB application with flood control that waits out every ``retry_after``.

    ``requests`` (for API calls, for getUpdates) are passed in so their owner can close them
    even when the application never finished initialising.
    """
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
        settings: TelegramSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
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
        # PTB's defaults: a wide pool for API calls, one connection for the long poll.
        self._requests = (
            HTTPXRequest(connection_pool_size=256),
            _PollRequest(connection_pool_size=1),
        )
        self._app = build_application(settings, self._requests)
        community = Community(core, self._app, file_ref=self._file_ref, post_status=self._post)
        self._status = StatusMessages(core, self._app, community, monotonic)
        self._handlers = Handlers(core, self._app, community, self._status, monotonic)
        self._handlers.register()

    def _file_ref(self, job: Job) -> str | None:
        return self._status.file_ref(job)

    async def _post(self, ticket: Ticket, chat_id: int, reply_to: int, lang: str) -> None:
        await self._status.post(ticket, chat_id, reply_to, lang)

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
        self._handlers.intake_open = True
        if app.updater is None:  # ApplicationBuilder always builds one
            raise RuntimeError("telegram: no updater to poll with")
        if self._webhook is None:
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        else:
            await _start_webhook(app.updater, self._webhook)

    async def stop_intake(self) -> None:
        """New commands get a polite refusal; deliveries of jobs in flight still go out."""
        self._handlers.intake_open = False

    async def aclose(self) -> None:
        self._handlers.intake_open = False
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

    # ----- notifier: the core talks back -----
    async def progress(self, job: Job, step: int, total: int) -> None:
        await self._status.progress(job, step, total)

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        return await self._status.deliver(job, jpeg_path)

    async def deliver_text(self, job: Job) -> Delivered:
        return await self._status.deliver_text(job)

    async def failed(self, job: Job, reason: i18n.Message | str) -> None:
        await self._status.failed(job, reason)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        # Telegram refuses some deletions (e.g. old messages in some chats): the core logs it.
        await self._app.bot.delete_message(int(channel_id), int(message_id))
