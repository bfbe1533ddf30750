"""Community features on Telegram: group settings, showcase sharing, votes, gallery, remix,
privacy and moderation commands.

Like the rest of the adapter this only translates: every rule (who may change what, what a
gallery shows, who is blocked, what a word filter refuses) lives in the core's
:class:`bot.ports.CommunityApi`. What is decided here is Telegram's side only — who is a group
admin (``getChatMember``), how a gallery page looks, which chat a showcase post goes to.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import ChatMember, ChatMemberAdministrator, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import Application

from adapters.telegram import community_texts as ct
from adapters.telegram import updates as tg
from adapters.telegram.args import gallery_view, settings_change, switch
from adapters.telegram.keyboards import (
    Action,
    Callback,
    encode,
    forget_keyboard,
    gallery_keyboard,
    showcase_keyboard,
    shown_score,
    with_score,
)
from adapters.telegram.texts import CAPTION_LIMIT
from bot.commands import split_command
from bot.domain import (
    DeriveKind,
    Job,
    JobAction,
    Language,
    Platform,
    Requester,
    Ticket,
)
from bot.errors import BadRequest, NotAllowed, NotFound
from bot.i18n import reply_language
from bot.ports import BotApi, GalleryPeriod, GallerySort

TgApp = Application[Any, Any, Any, Any, Any, Any]
Button = Callable[[Update, Callback], Awaitable[str | None]]
PostStatus = Callable[[Ticket, int, int, str], Awaitable[None]]
FileRef = Callable[[Job], str | None]

GALLERY_PAGE = 5  # one text message per page: a few lines, well within flood limits
AUDIT_LINES = 20
_ADMINS = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}
_CAN_POST = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER}
_USER_ID = re.compile(r"\d{1,20}")

_SORTS: dict[str, GallerySort] = {"r": "recent", "t": "top"}
_PERIODS: dict[str, GalleryPeriod] = {"w": "week", "m": "month", "a": "all"}


class Community:
    """Handlers for the community commands and buttons; the adapter routes to them."""

    def __init__(
        self, core: BotApi, app: TgApp, *, file_ref: FileRef, post_status: PostStatus
    ) -> None:
        self._core = core
        self._app = app
        self._file_ref = file_ref
        self._post_status = post_status

    def commands(self) -> dict[str, tg.Handler]:
        return {
            "settings": self._settings,
            "gallery": self._gallery,
            "privacy": self._privacy,
            "forget": self._forget,
            "block": self._block,
            "unblock": self._unblock,
            "audit": self._audit,
        }

    def buttons(self) -> dict[Action, Button]:
        return {
            Action.SHARE: self._on_share,
            Action.VOTE: self._on_vote,
            Action.REMIX: self._on_remix,
            Action.GALLERY: self._on_gallery_page,
            Action.FORGET: self._on_forget,
            Action.KEEP: self._on_keep,
        }

    # ----- language and admins -----
    async def server_lang(
        self, server_id: str | None, language_code: str | Language | None = None
    ) -> str:
        """The core's rule (:func:`bot.i18n.reply_language`): the group's language when it
        chose one, else the user's ``language_code`` (always so in a private chat)."""
        chosen = None
        if server_id is not None:
            chosen = (await self._core.server_settings(Platform.TELEGRAM, server_id)).language
        return str(reply_language(chosen, language_code))

    async def lang(self, update: Update) -> str:
        """The language to answer this update in (the rule of :meth:`server_lang`)."""
        return await self.server_lang(tg.group_id(update), tg.language(update))

    async def is_admin(self, update: Update) -> bool:
        """Creator or administrator of this group, by asking Telegram (never cached: rights
        change). A message sent "as the group" comes from an anonymous admin."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or not tg.is_group(update):
            return False
        message = update.effective_message
        if message is not None and message.sender_chat is not None:
            return message.sender_chat.id == chat.id
        member = await self._app.bot.get_chat_member(chat.id, user.id)
        return member.status in _ADMINS

    async def _admin(self, update: Update, lang: str) -> Requester:
        """The requester, when this is a group and they administer it (else a clear refusal)."""
        if not tg.is_group(update):
            raise BadRequest(ct.say(lang, "groups_only"))
        if not await self.is_admin(update):
            raise NotAllowed(ct.say(lang, "admins_only"))
        return tg.requester(update)

    # ----- /settings -----
    async def _settings(self, update: Update, context: tg.Ctx) -> None:
        lang = await self.lang(update)
        actor = await self._admin(update, lang)
        message = tg.message(update)
        _, rest = split_command(message.text or "")
        words = rest.split(maxsplit=2)
        if not words:
            shown = await self._core.server_settings(Platform.TELEGRAM, actor.channel_id)
            await message.reply_text(ct.settings(lang, shown))
            return
        if len(words) < 3 or words[0].lower() != "set":
            await message.reply_text(ct.say(lang, "settings_usage"))
            return
        change = settings_change(lang, words[1], words[2].strip(), actor.channel_id)
        if change.showcase_channel_id is not None:
            await self._check_showcase(lang, actor, change.showcase_channel_id)
        saved = await self._core.update_server_settings(actor, change, is_admin=True)
        # A change of language answers in the new one.
        await message.reply_text(ct.settings(str(saved.language), saved, changed=True))

    async def _check_showcase(self, lang: str, actor: Requester, chat: str) -> None:
        """A showcase chat must be one the admin also administers, and one the bot can post
        in: otherwise an admin of one group could route images into any chat the bot is in."""
        target: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
        bot = self._app.bot
        try:
            kind = (await bot.get_chat(target)).type
            theirs = await bot.get_chat_member(target, int(actor.user_id))
            mine = await bot.get_chat_member(target, bot.id)
        except TelegramError:  # no such chat, or the bot is not in it
            raise BadRequest(ct.say(lang, "showcase_unknown", chat=chat)) from None
        if theirs.status not in _ADMINS:
            raise NotAllowed(ct.say(lang, "showcase_not_admin", chat=chat))
        if not can_post(mine, channel=kind == ChatType.CHANNEL):
            raise BadRequest(ct.say(lang, "showcase_bot_cannot_post", chat=chat))

    # ----- sharing to the showcase, votes, remix -----
    async def _on_share(self, update: Update, callback: Callback) -> str:
        requester = tg.requester(update)
        ticket = await self._core.share(requester, callback.int_arg(0))
        lang = await self.server_lang(requester.server_id, tg.language(update))
        if ticket.message_id is not None:  # a second press: it is already in the showcase
            return ct.say(lang, "shared")
        job = ticket.job
        ref = self._file_ref(job)
        if ref is None:  # posted as a document, or before file ids were kept: upload once
            path = self._core.image_file(job)
            if path is None:
                raise NotFound(ct.say(lang, "file_gone"))
            photo: str | bytes = await asyncio.to_thread(path.read_bytes)
        else:
            photo = ref  # Telegram's cached copy: no re-upload
        sent = await self._app.bot.send_photo(
            ticket.channel_id,
            photo=photo,
            caption=ct.showcase_caption(lang, ticket, CAPTION_LIMIT),
            reply_markup=showcase_keyboard(ticket.share_id, job.id, 0, ct.say(lang, "remix")),
            has_spoiler=job.spoiler,  # flagged by the safety check: hidden in the showcase too
        )
        await self._core.record_share(ticket.share_id, str(sent.message_id))
        return ct.say(lang, "shared")

    async def _on_vote(self, update: Update, callback: Callback) -> str:
        share_id = callback.int_arg(0)
        message = tg.message(update)
        data = encode(Action.VOTE, share_id)
        shown = shown_score(message.reply_markup, data)
        # The core knows whether this user had liked it; the button only shows the score.
        result = await self._core.toggle_vote(tg.requester(update), share_id)
        if result.score != shown:
            await message.edit_reply_markup(
                reply_markup=with_score(message.reply_markup, data, result.score)
            )
        lang = await self.lang(update)
        return ct.say(lang, "voted" if result.my_vote > 0 else "unvoted", score=result.score)

    async def _on_remix(self, update: Update, callback: Callback) -> str:
        ticket = await self._core.derive(
            tg.requester(update), callback.int_arg(0), DeriveKind.REMIX
        )
        message = tg.message(update)
        lang = await self.lang(update)
        await self._post_status(ticket, message.chat_id, message.message_id, lang)
        return f"#{ticket.job.id}"

    async def remix_credit(self, job: Job, lang: str) -> str | None:
        """ "remix of #N by NAME" for a job made from someone else's image (None otherwise)."""
        credit = await self._core.credit_for(job)
        if credit is None:
            return None
        return ct.remix_credit(lang, credit)

    async def share_options(self, job: Job) -> tuple[bool, bool]:
        """(offer the showcase button, offer sharing into other chats) for a result."""
        if job.requester.server_id is None:
            return False, True
        settings = await self._core.server_settings(Platform.TELEGRAM, job.requester.server_id)
        return True, settings.allow_external_share

    async def shareable(self, requester: Requester, job_ids: list[int]) -> list[Job]:
        """Those of ``job_ids`` this user may share into any chat (inline mode): only their
        own, and as the core decides (opt-out, the group's "share outside" setting)."""
        kept = []
        for job_id in job_ids:
            try:
                kept.append(await self._core.job_for(requester, job_id, JobAction.SHARE_OUTSIDE))
            except (NotFound, NotAllowed):
                continue
        return kept

    # ----- /gallery -----
    async def _gallery(self, update: Update, context: tg.Ctx) -> None:
        lang = await self.lang(update)
        if not tg.is_group(update):
            raise BadRequest(ct.say(lang, "groups_only"))
        message = tg.message(update)
        _, rest = split_command(message.text or "")
        try:
            view = gallery_view(rest.split())
        except ValueError:
            await message.reply_text(ct.say(lang, "gallery_usage"))
            return
        text, keyboard = await self._gallery_page(str(message.chat_id), lang, view, 0)
        await message.reply_text(text, reply_markup=keyboard, disable_web_page_preview=True)

    async def _on_gallery_page(self, update: Update, callback: Callback) -> None:
        view, page = callback.args[0], callback.page_arg(1)
        if view[:1] not in _SORTS or view[1:] not in _PERIODS:
            raise ValueError(view)
        message = tg.message(update)
        lang = await self.lang(update)
        text, keyboard = await self._gallery_page(str(message.chat_id), lang, view, page)
        await message.edit_text(text, reply_markup=keyboard, disable_web_page_preview=True)

    async def _gallery_page(
        self, server_id: str, lang: str, view: str, page: int
    ) -> tuple[str, Any]:
        sort, period = _SORTS[view[0]], _PERIODS[view[1]]
        items = await self._core.gallery(
            Platform.TELEGRAM,
            server_id,
            sort=sort,
            period=period,
            limit=GALLERY_PAGE + 1,  # one more tells whether there is a next page
            offset=page * GALLERY_PAGE,
        )
        settings = await self._core.server_settings(Platform.TELEGRAM, server_id)
        showcase = settings.showcase_channel_id
        lines = [
            ct.gallery_line(
                lang, page * GALLERY_PAGE + n + 1, item, ct.message_link(showcase, item.message_id)
            )
            for n, item in enumerate(items[:GALLERY_PAGE])
        ]
        top = sort == "top"
        labels = (
            ct.say(lang, "prev_top" if top else "prev"),
            ct.say(lang, "next_top" if top else "next"),
        )
        keyboard = gallery_keyboard(view, page, len(items) > GALLERY_PAGE, labels)
        return ct.gallery(lang, sort, period, page, lines), keyboard

    # ----- /privacy and /forget -----
    async def _privacy(self, update: Update, context: tg.Ctx) -> None:
        lang = await self.lang(update)
        message = tg.message(update)
        requester = tg.requester(update)
        _, rest = split_command(message.text or "")
        words = rest.lower().split()
        if not words:
            await message.reply_text(ct.privacy(lang, await self._core.privacy(requester)))
            return
        changes: dict[str, bool] = {}
        pairs = dict(zip(words[::2], words[1::2], strict=False))
        if len(words) % 2 or not set(pairs) <= {"optout", "hide"}:
            await message.reply_text(ct.say(lang, "privacy_usage"))
            return
        for word, value in pairs.items():
            changes["share_opt_out" if word == "optout" else "hide_details"] = switch(
                lang, word, value
            )
        updated = await self._core.set_privacy(
            requester,
            share_opt_out=changes.get("share_opt_out"),
            hide_details=changes.get("hide_details"),
        )
        await message.reply_text(ct.privacy(lang, updated))

    async def _forget(self, update: Update, context: tg.Ctx) -> None:
        lang = await self.lang(update)
        requester = tg.requester(update)
        labels = (ct.say(lang, "forget_yes"), ct.say(lang, "forget_no"))
        await tg.message(update).reply_text(
            ct.say(lang, "forget_confirm"),
            reply_markup=forget_keyboard(requester.user_id, labels),
        )

    async def _on_forget(self, update: Update, callback: Callback) -> str:
        lang = await self.lang(update)
        requester = tg.requester(update)
        if callback.args[0] != requester.user_id:
            return ct.say(lang, "not_yours")
        count = await self._core.forget(requester)
        done = ct.say(lang, "forget_done", count=count)
        await tg.message(update).edit_text(done)
        return done

    async def _on_keep(self, update: Update, callback: Callback) -> str:
        lang = await self.lang(update)
        if callback.args[0] != tg.requester(update).user_id:
            return ct.say(lang, "not_yours")
        kept = ct.say(lang, "forget_kept")
        await tg.message(update).edit_text(kept)
        return kept

    # ----- moderation -----
    async def _block(self, update: Update, context: tg.Ctx) -> None:
        await self._set_blocked(update, blocked=True)

    async def _unblock(self, update: Update, context: tg.Ctx) -> None:
        await self._set_blocked(update, blocked=False)

    async def _set_blocked(self, update: Update, *, blocked: bool) -> None:
        lang = await self.lang(update)
        actor = await self._admin(update, lang)
        message = tg.message(update)
        target = _target_user(message)
        if target is None:
            command = "block" if blocked else "unblock"
            await message.reply_text(ct.say(lang, "block_usage", command=command))
            return
        await self._core.set_blocked(actor, target, blocked, is_admin=True)
        await message.reply_text(ct.say(lang, "blocked" if blocked else "unblocked", user=target))

    async def _audit(self, update: Update, context: tg.Ctx) -> None:
        lang = await self.lang(update)
        actor = await self._admin(update, lang)
        entries = await self._core.audit_log(actor, is_admin=True, limit=AUDIT_LINES)
        await tg.message(update).reply_text(ct.audit(lang, entries))


def can_post(member: ChatMember, *, channel: bool) -> bool:
    """Whether this member (the bot) may post photos in its chat: in a channel only an admin
    with "post messages"; in a group any member that is not restricted from sending photos."""
    if isinstance(member, ChatMemberAdministrator):
        return member.can_post_messages is not False  # None in groups: admins may post there
    if channel:
        return member.status == ChatMemberStatus.OWNER
    if member.status == ChatMemberStatus.RESTRICTED:
        return bool(getattr(member, "can_send_photos", False))
    return member.status in _CAN_POST


def _target_user(message: Message) -> str | None:
    """Whom ``/block`` means: the author of the replied-to message, or a user id argument."""
    _, rest = split_command(message.text or "")
    if rest and _USER_ID.fullmatch(rest.strip()):
        return rest.strip()
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return str(replied.from_user.id)
    return None
