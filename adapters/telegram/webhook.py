"""Webhook mode: the settings that switch it on, checked before anything connects.

Telegram POSTs each update to ``TELEGRAM_WEBHOOK_URL`` (public HTTPS) with the header
``X-Telegram-Bot-Api-Secret-Token``; a reverse proxy terminates TLS and forwards to the bot's
local ``TELEGRAM_WEBHOOK_LISTEN:TELEGRAM_WEBHOOK_PORT``. PTB's own server answers ``403`` to a
request without the right secret, so only Telegram can feed the bot.

The bot listens on the public URL's own path, so a proxy that forwards paths unchanged needs no
rewrite. That path is the operator's choice and is refused if it holds the bot token: the token
never appears in a URL the bot serves or logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.slices import TelegramSettings

# What Telegram accepts as a setWebhook secret_token.
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class WebhookSettingsError(ValueError):
    """The webhook settings cannot work; the message names the setting and holds no secret."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where Telegram sends updates (``url``) and where the bot listens for them."""

    url: str
    secret: str
    listen: str
    port: int
    url_path: str

    def __repr__(self) -> str:  # the secret must not reach a log through a repr
        return f"Webhook(url={self.url!r}, listen={self.listen!r}, port={self.port})"


def webhook_from(settings: TelegramSettings) -> Webhook | None:
    """The webhook to serve, or ``None`` for long polling (no ``TELEGRAM_WEBHOOK_URL``)."""
    url = (settings.telegram_webhook_url or "").strip()
    if not url:
        return None
    secret = _secret(settings)
    token = settings.telegram_token.get_secret_value()
    return Webhook(
        url=url,
        secret=secret,
        listen=settings.telegram_webhook_listen,
        port=settings.telegram_webhook_port,
        url_path=_url_path(url, token),
    )


def _secret(settings: TelegramSettings) -> str:
    if settings.telegram_webhook_secret is None:
        raise WebhookSettingsError(
            "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: without it anyone"
            " who finds the URL can post fake updates. Set TELEGRAM_WEBHOOK_SECRET (1-256"
            " characters of A-Z a-z 0-9 _ -, e.g. `openssl rand -hex 32`), or unset"
            " TELEGRAM_WEBHOOK_URL to use long polling."
        )
    secret = settings.telegram_webhook_secret.get_secret_value()
    if not _SECRET.fullmatch(secret):
        raise WebhookSettingsError(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule)"
        )
    return secret


def _url_path(url: str, token: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise WebhookSettingsError(
            "TELEGRAM_WEBHOOK_URL must be a public https:// URL (Telegram calls only HTTPS)"
        )
    # The part after the colon is the token's secret half: refuse it alone, too.
    if any(part and part in url for part in (token, token.rpartition(":")[2])):
        raise WebhookSettingsError(
            "TELEGRAM_WEBHOOK_URL must not contain the bot token: URLs end up in proxy logs"
        )
    return parts.path or "/"
