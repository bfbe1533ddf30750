"""The iteration loop on Telegram (issue 13): a grid's U/V buttons, vary / upscale / remix of
one image, remix by replying with an edited prompt, and a user's photo to start from.

Only translation: which image, which kind and what prompt come from the update; the rules (the
seed, the strength, who may, the file checks) are the core's. Nothing here is kept in memory:
a button carries its job id, and a reply finds its job in the message it answers (the remix
prompt's first line, or the result's own buttons), so all of it works after a restart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import ForceReply, Message, Update
from telegram.ext import Application

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.keyboards import Action, Callback, job_of_markup
from adapters.telegram.photos import fetch, image_of, is_file
from adapters.telegram.status import StatusMessages
from bot.commands import split_command
from bot.domain import DeriveKind, GenerateRequest, JobAction, Ticket
from bot.errors import BadRequest
from bot.i18n import msg, t
from bot.ports import BotApi
from bot.texts import shown_prompt

TgApp = Application[Any, Any, Any, Any, Any, Any]
Button = Callable[[Update, Callback], Awaitable[str | None]]

PLACEHOLDER_LIMIT = 64  # ForceReply's input_field_placeholder
_REMIX_MARK = "✏️"
# The first line of a remix prompt: "✏️ #42". The job id is read back from it, not remembered.
_REMIX_REF = re.compile(_REMIX_MARK + r" #([0-9]{1,19})\b")

# A button's derive kind; V k under a grid is a strong variation, as Midjourney's V buttons.
_KINDS = {
    Action.VARY_IMAGE: DeriveKind.VARY_STRONG,
    Action.VARY_SUBTLE: DeriveKind.VARY_SUBTLE,
    Action.VARY_STRONG: DeriveKind.VARY_STRONG,
    Action.UPSCALE_SUBTLE: DeriveKind.UPSCALE_SUBTLE,
    Action.UPSCALE_CREATIVE: DeriveKind.UPSCALE_CREATIVE,
    Action.PICK: DeriveKind.PICK,
}


class Iteration:
    """The iteration buttons, remix replies and image input; ``lang`` is the adapter's rule."""

    def __init__(
        self, core: BotApi, app: TgApp, community: Community, status: StatusMessages
    ) -> None:
        self._core = core
        self._app = app
        self._status = status
        self._lang = community.lang

    def buttons(self) -> dict[Action, Button]:
        derive: dict[Action, Button] = dict.fromkeys(_KINDS, self._on_derive)
        return {**derive, Action.REMIX_PROMPT: self._on_remix_prompt}

    # ----- buttons -----
    async def _on_derive(self, update: Update, callback: Callback) -> str:
        kind = _KINDS[callback.action]
        job_id, image = callback.int_arg(0), callback.image_arg(1)
        ticket = await self._core.derive(tg.requester(update), job_id, kind, image=image)
        return await self._queued(update, ticket)

    async def _on_remix_prompt(self, update: Update, callback: Callback) -> None:
        """Ask for the edited prompt: a message the user answers by replying (ForceReply),
        showing the prompt now so it can be copied and changed."""
        lang = await self._lang(update)
        # Who may remix is the core's rule: asked now, so nobody types a prompt in vain.
        job = await self._core.job_for(tg.requester(update), callback.int_arg(0), JobAction.REMIX)
        prompt = shown_prompt(job, lang)
        ask = t("telegram.remix_ask", lang, prompt=prompt)
        placeholder = texts.shorten(t("telegram.remix_placeholder", lang), PLACEHOLDER_LIMIT)
        message = tg.message(update)
        await message.reply_text(
            texts.shorten(f"{_REMIX_MARK} #{job.id}\n{ask}", texts.MESSAGE_LIMIT),
            reply_markup=ForceReply(input_field_placeholder=placeholder),
        )

    # ----- replies with an edited prompt -----
    def reply_target(self, update: Update) -> int:
        """The job a text reply to one of the bot's messages would remix; Ignored for any
        other reply (people answering each other, a reply to a status line)."""
        answered = tg.message(update).reply_to_message
        if answered is None or answered.from_user is None:
            raise tg.Ignored
        if answered.from_user.id != self._app.bot.id:
            raise tg.Ignored  # people replying to each other
        job_id = _remix_target(answered)
        if job_id is None:
            raise tg.Ignored  # a reply to a status line or a help text: not a prompt
        return job_id

    async def remix_reply(self, update: Update, job_id: int) -> None:
        """The reply's text is the edited prompt (options such as --strength included)."""
        message = tg.message(update)
        ticket = await self._core.derive(
            tg.requester(update), job_id, DeriveKind.REMIX, image=1, prompt=message.text or ""
        )
        lang = await self._lang(update)
        await self._status.post(ticket, message.chat_id, message.message_id, lang)

    # ----- a picture to start from -----
    async def on_photo(self, update: Update, context: tg.Ctx) -> None:
        """A photo (or image file) with the caption ``/imagine <prompt> [--strength S]``."""
        message = tg.message(update)
        caption = message.caption or ""
        _, _, mention = caption.split(maxsplit=1)[0].partition("@")
        if mention and mention.lower() != (self._app.bot.username or "").lower():
            raise tg.Ignored  # "/imagine@other_bot": meant for another bot in the group
        _, rest = split_command(caption)
        await self.imagine_from(update, message, rest)

    async def imagine_from(self, update: Update, source: Message, rest: str) -> None:
        """``/imagine rest`` starting from the picture in ``source``."""
        message = tg.message(update)
        lang = await self._lang(update)
        if not rest:
            await message.reply_text(t("telegram.imagine_usage", lang))
            return
        picture = image_of(source)
        if picture is None:
            raise BadRequest(msg("telegram.not_an_image"))
        data = await fetch(self._app.bot, picture)
        # The core parses the options in the prompt and checks the bytes.
        ticket = await self._core.submit(GenerateRequest(tg.requester(update), rest), image=data)
        await self._status.post(ticket, message.chat_id, message.message_id, lang)

    async def _queued(self, update: Update, ticket: Ticket) -> str:
        message = tg.message(update)
        lang = await self._lang(update)
        await self._status.post(ticket, message.chat_id, message.message_id, lang)
        return texts.queued(ticket, lang)


def carries_picture(message: Message | None) -> bool:
    """The message has a photo or a file: ``/imagine`` in reply to it starts from it."""
    return image_of(message) is not None or is_file(message)


def _remix_target(answered: Message) -> int | None:
    """The job a reply is about: the remix prompt's ``✏️ #42``, or the buttons of a one-image
    result or a showcase post. A grid has several images: the user is told to pick one first."""
    match = _REMIX_REF.match(answered.text or "")
    if match is not None:
        return int(match.group(1))
    found = job_of_markup(answered.reply_markup)
    if found is None:
        return None
    action, job_id = found
    if action is Action.PICK:
        raise BadRequest(msg("telegram.remix_pick_first"))
    return job_id
