"""Reading python-telegram-bot updates into core types (shared by every handler module)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Message, ReplyParameters, Update, User
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.domain import Platform, Requester
from bot.i18n import language_of

Ctx = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Ctx], Coroutine[Any, Any, None]]


class Ignored(Exception):
    """An update this adapter does not serve (a channel post without a user, ...)."""


def reply_to(message_id: str | int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    # The command message may be gone by the time the image is ready: post anyway.
    return ReplyParameters(message_id=int(message_id), allow_sending_without_reply=True)


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in {ChatType.GROUP, ChatType.SUPERGROUP}


def group_id(update: Update) -> str | None:
    """The group's id as the core's ``server_id`` (None outside groups)."""
    chat = update.effective_chat
    return str(chat.id) if chat is not None and is_group(update) else None


def display_name(user: User) -> str:
    """The name credits show; never empty (Telegram accepts a blank first name)."""
    name = user.full_name or ""  # None when Telegram sent an empty first_name
    if name.strip():
        return name
    return f"@{user.username}" if user.username else f"user {user.id}"


def requester(update: Update) -> Requester:
    user, chat = update.effective_user, update.effective_chat
    if user is None:
        raise Ignored
    # The user's own language, kept with their jobs (posts after a restart speak it too).
    lang = None if user.language_code is None else language_of(user.language_code)
    if chat is None:  # inline queries: no chat; results go to the user
        return Requester(
            Platform.TELEGRAM, str(user.id), display_name(user), str(user.id), language=lang
        )
    message = update.effective_message
    return Requester(
        platform=Platform.TELEGRAM,
        user_id=str(user.id),
        display_name=display_name(user),
        channel_id=str(chat.id),
        server_id=group_id(update),
        reply_to=str(message.message_id) if message is not None else None,
        language=lang,
    )


def language(update: Update) -> str | None:
    user = update.effective_user
    return user.language_code if user is not None else None


def message(update: Update) -> Message:
    found = update.effective_message
    if not isinstance(found, Message):
        raise Ignored
    return found
