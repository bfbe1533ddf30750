"""Process lifecycle helpers: logging (text or JSON, secrets redacted), stop and reload signals.

Tokens must never reach a log line. httpx logs every request URL at INFO, and a Telegram URL
contains the bot token, so its logger is raised to WARNING; on top of that every formatted
line (message, arguments and tracebacks) passes through a redactor that knows the secrets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TextIO

# Telegram bot tokens ("123456:ABC-...") and Discord bot tokens (three base64url parts).
_TOKEN_PATTERNS = (
    # No \b before the digits: in API URLs the token follows "bot" directly (".../bot123:AA...").
    re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"),
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b"),
)
REDACTED = "[REDACTED]"
_NOISY_LOGGERS = ("httpx", "httpcore", "aiohttp.access", "discord.gateway", "PIL")


class Redactor:
    """Replaces known secret values and anything shaped like a bot token."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(REDACTED, text)
        return text


class RedactingFormatter(logging.Formatter):
    """Formats as text or one JSON object per line, then redacts the whole line."""

    def __init__(self, redact: Redactor, *, json_lines: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._redact = redact
        self._json = json_lines

    def format(self, record: logging.LogRecord) -> str:
        if not self._json:
            return self._redact(super().format(record))
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(entry, ensure_ascii=False))


def setup_logging(
    level: str, fmt: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Configure the root logger once for the process (the composition root calls this)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(Redactor(secrets), json_lines=fmt == "json"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (graceful); a second signal falls back to the default kill."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        logging.getLogger(__name__).warning(
            "%s: stopping (finishing the image in progress; send again to force)", sig.name
        )
        stop.set()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(s)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


def install_reload_signal(reload: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """SIGHUP runs ``reload`` (one at a time): ``systemctl reload`` and ``kill -HUP`` send it."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        if running:
            logging.getLogger(__name__).info("SIGHUP: a reload is already running")
            return
        task = loop.create_task(reload(), name="reload")
        running.add(task)
        task.add_done_callback(running.discard)

    loop.add_signal_handler(signal.SIGHUP, on_signal)
