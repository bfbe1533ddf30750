"""Telegram chat adapter (python-telegram-bot): see :class:`TelegramAdapter`."""

from adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
