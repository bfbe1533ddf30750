"""A fake Telegram Bot API server on loopback, for driving the real python-telegram-bot.

It speaks just enough of https://core.telegram.org/bots/api for the adapter: ``getMe``,
long-polled ``getUpdates`` fed from a queue the test pushes to, the send/edit/delete methods
(``sendPhoto``/``sendDocument`` as multipart, or ``sendPhoto`` by a cached ``file_id``),
``getChatMember`` answered from a table the test fills (:meth:`FakeBotApi.set_member`), callback
and inline answers, ``setWebhook``/``deleteWebhook`` (the registered webhook and its secret are
kept, and :meth:`FakeBotApi.deliver` POSTs an update to the bot the way Telegram would), and a
switch that answers the next N calls of a method with ``429 Too Many Requests`` + ``retry_after``.
Every call is recorded, so tests assert on what the bot really sent over HTTP.

Telegram's size limits are enforced the way Telegram enforces them, with ``400 Bad Request``:
message text 1-4,096 and captions up to 1,024 UTF-16 code units (what Telegram counts), callback
data 1-64 bytes, callback answers up to 200 characters, a ``sendPhoto`` upload up to 10 MB,
width + height up to 10,000 and a ratio of sides up to 20. A refused call is recorded as
``<method>!400`` (see :meth:`FakeBotApi.refusals`), so a test can assert the bot never tried.

Users' files: :meth:`FakeBotApi.add_file` stores bytes under a ``file_id`` (with the size
Telegram would announce), ``getFile`` answers its ``file_path`` and the file server
(``/file/bot<token>/<path>``) serves it; each download is recorded in ``downloads``.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.web_request import FileField
from PIL import Image

JSON = dict[str, Any]

BOT_USER: JSON = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Turbo",
    "username": "turbo_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": True,
}


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the bot made: the method, its (decoded) parameters and uploaded files."""

    method: str
    params: JSON
    files: dict[str, Upload] = field(default_factory=dict)
    token: str = ""
    result: Any = None

    @property
    def has_spoiler(self) -> bool:
        """``has_spoiler`` as Telegram reads it (multipart sends ``true``; JSON a boolean)."""
        return str(self.params.get("has_spoiler", "false")).lower() == "true"


TEXT_LIMIT = 4096  # UTF-16 code units, like every limit below that counts text
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
CALLBACK_ANSWER_LIMIT = 200
PHOTO_BYTES_LIMIT = 10 * 1024 * 1024
PHOTO_SIDES_LIMIT = 10_000  # width + height
PHOTO_RATIO_LIMIT = 20
_TEXT_METHODS = {"sendMessage", "editMessageText"}
_CAPTION_METHODS = {"sendPhoto", "sendDocument", "editMessageCaption"}


def utf16_units(text: str) -> int:
    """Length as Telegram measures it (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _markup_problem(markup: object) -> str | None:
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                return "BUTTON_DATA_INVALID"
    return None


def photo_problem(files: dict[str, Upload]) -> str | None:
    """What Telegram says about an uploaded photo it will not take (None: it fits)."""
    photo = files.get("photo")
    if photo is None:
        return None  # sent by file_id
    if len(photo.data) > PHOTO_BYTES_LIMIT:
        return "PHOTO_SAVE_FILE_INVALID"
    try:
        with Image.open(io.BytesIO(photo.data)) as image:
            width, height = image.size
    except OSError:
        return "IMAGE_PROCESS_FAILED"
    if width + height > PHOTO_SIDES_LIMIT or max(width, height) > PHOTO_RATIO_LIMIT * min(
        width, height
    ):
        return "PHOTO_INVALID_DIMENSIONS"
    return None


def limit_problem(method: str, params: JSON) -> str | None:
    """Telegram's "Bad Request" description for a call over a limit, else None."""
    if method in _TEXT_METHODS:
        text = str(params.get("text", ""))
        if not text.strip():
            return "message text is empty"
        if utf16_units(text) > TEXT_LIMIT:
            return "message is too long"
    if method in _CAPTION_METHODS and utf16_units(str(params.get("caption") or "")) > CAPTION_LIMIT:
        return "message caption is too long"
    if (
        method == "answerCallbackQuery"
        and len(str(params.get("text") or "")) > CALLBACK_ANSWER_LIMIT
    ):
        return "MESSAGE_TOO_LONG"
    if method == "answerInlineQuery":
        for result in params.get("results") or []:
            if utf16_units(str(result.get("caption") or "")) > CAPTION_LIMIT:
                return "MEDIA_CAPTION_TOO_LONG"
    return _markup_problem(params.get("reply_markup"))


# Parameters that are always text, even when a user's text starts like JSON ("[click](…)").
_TEXT_PARAMS = frozenset({"text", "caption", "query", "switch_inline_query", "title"})


def _decode(key: str, value: str) -> Any:
    """PTB sends scalars as text and structures as JSON text; decode structures only."""
    if key not in _TEXT_PARAMS and value[:1] in "[{":
        return json.loads(value)
    return value


class FakeBotApi:
    """The fake server. Use as ``async with FakeBotApi() as api:``; ``api.base_url`` for PTB."""

    def __init__(self, valid_token: str | None = None) -> None:
        self.valid_token = valid_token  # when set, other tokens get 401 like Telegram's
        self.broken: set[str] = set()  # methods answered 502 Bad Gateway, as in an outage
        self.calls: list[Call] = []
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._fail: dict[str, tuple[int, float]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0
        # (chat id, user id) -> "creator" | "administrator" | "member" | "left" ...
        self.members: dict[tuple[int | str, int], str] = {}
        self.rights: dict[tuple[int | str, int], JSON] = {}  # extra fields of a member
        self.channels: set[int | str] = set()  # chats getChat calls "channel"
        self.unknown_chats: set[int | str] = set()  # chats getChat(Member) answers "not found"
        # The registered webhook, as setWebhook gave it (url, secret_token, allowed_updates ...).
        self.webhook: JSON | None = None
        self.polls = 0  # getUpdates calls (not kept in ``calls``: a long poll repeats forever)
        self.files: dict[str, tuple[bytes, int]] = {}  # file_id -> (bytes, announced size)
        self.downloads: list[str] = []  # file ids fetched from the file server

    # ----- lifecycle -----
    async def __aenter__(self) -> FakeBotApi:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # End pending long polls now: the server's shutdown waits for every open request.
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # ----- what tests call -----
    async def push(self, update: JSON) -> int:
        """Queue an update (without ``update_id``) for the next ``getUpdates``; returns its id."""
        update_id = next(self._update_ids)
        async with self._changed:
            self._updates.append({"update_id": update_id, **update})
            self._changed.notify_all()
        return update_id

    def fail_next(self, method: str, times: int, retry_after: float = 0.2) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``retry_after``."""
        self._fail[method] = (times, retry_after)

    def set_member(self, chat_id: int | str, user_id: int, status: str, **rights: object) -> None:
        """What ``getChatMember`` answers for this user in this chat (default "member");
        ``rights`` override fields of the answer (``can_post_messages=False`` ...)."""
        self.members[(chat_id, user_id)] = status
        self.rights[(chat_id, user_id)] = dict(rights)

    async def deliver(self, url: str, update: JSON, *, secret: str | None = None) -> int:
        """POST ``update`` (without ``update_id``) to the bot's webhook server at ``url``, with
        ``secret`` in the secret header (default: the one registered; ``""``: no header).

        ``url`` is where the bot listens (the public URL leads to a reverse proxy that tests
        do not have). Returns the HTTP status the bot answered.
        """
        if secret is None:
            assert self.webhook is not None, "the bot registered no webhook"
            secret = str(self.webhook.get("secret_token", ""))
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        body = {"update_id": next(self._update_ids), **update}
        async with ClientSession() as session, session.post(url, json=body, headers=headers) as r:
            return r.status

    def add_file(self, data: bytes, *, announced: int | None = None) -> str:
        """Store a user's file; its ``file_id``. ``announced``: the ``file_size`` Telegram
        reports (default the real size)."""
        file_id = f"user-file-{next(self._file_ids)}"
        self.files[file_id] = (data, len(data) if announced is None else announced)
        return file_id

    def refusals(self) -> list[Call]:
        """Calls answered ``400 Bad Request`` because they broke one of Telegram's limits."""
        return [c for c in self.calls if c.method.endswith("!400")]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[Call], bool] = lambda _c: True,
        within: float = 10.0,
    ) -> list[Call]:
        """Wait until ``count`` successful calls of ``method`` matching ``where`` were made."""

        def matching() -> list[Call]:
            return [c for c in self.calls_of(method) if where(c)]

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()

    # ----- the HTTP side -----
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self.valid_token is not None and request.match_info["token"] != self.valid_token:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            return web.json_response(body, status=401)
        if method in self.broken:  # an outage between the bot and Telegram
            return web.Response(status=502, text="Bad Gateway")
        params: JSON = {}
        files: dict[str, Upload] = {}
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, FileField):
                    files[key] = Upload(value.filename, value.content_type, value.file.read())
                elif isinstance(value, str):
                    params[key] = _decode(key, value)
        if method == "getUpdates":
            self.polls += 1
            return _ok(await self._get_updates(params))
        refused = self._refuse(method)
        if refused is not None:
            self.calls.append(Call(f"{method}!429", params, files, request.match_info["token"]))
            return refused
        problem = (
            limit_problem(method, params)
            or (photo_problem(files) if method == "sendPhoto" else None)
            or self._chat_problem(method, params)
        )
        if problem is not None:
            async with self._changed:
                self.calls.append(Call(f"{method}!400", params, files, request.match_info["token"]))
                self._changed.notify_all()
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {problem}"}
            return web.json_response(body, status=400)
        result = self._answer(method, params, files)
        async with self._changed:
            self.calls.append(Call(method, params, files, request.match_info["token"], result))
            self._changed.notify_all()
        return _ok(result)

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("files/")
        if file_id not in self.files:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(file_id)
        return web.Response(body=self.files[file_id][0])

    def _get_file(self, params: JSON) -> JSON:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": self.files[file_id][1],
            "file_path": f"files/{file_id}",
        }

    def _refuse(self, method: str) -> web.Response | None:
        times, retry_after = self._fail.get(method, (0, 0.0))
        if times <= 0:
            return None
        self._fail[method] = (times - 1, retry_after)
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }
        return web.json_response(body, status=429)

    async def _get_updates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        async with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout > 0:
                # A long poll: return as soon as the test pushes something, else after timeout.
                try:
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: bool(self._updates) or self._closing)
                except TimeoutError:
                    return []
            return list(self._updates)

    def _answer(self, method: str, params: JSON, files: dict[str, Upload]) -> Any:
        answers: dict[str, Callable[[], Any]] = {
            "getMe": lambda: BOT_USER,
            "sendMessage": lambda: self._message(params, text=str(params.get("text", ""))),
            "editMessageText": lambda: self._message(params, text=str(params.get("text", ""))),
            "editMessageReplyMarkup": lambda: self._message(params),
            "sendPhoto": lambda: self._message(
                params,
                caption=params.get("caption"),
                photo=self._photo(params.get("photo")),
                # Telegram echoes the spoiler on the sent message.
                has_media_spoiler=Call("sendPhoto", params).has_spoiler or None,
            ),
            "editMessageCaption": lambda: self._message(params, caption=params.get("caption")),
            "getChatMember": lambda: self._member(params),
            "getChat": lambda: self._chat(params),
            "sendDocument": lambda: self._message(
                params, caption=params.get("caption"), document=self._document(files)
            ),
            "getMyCommands": list,
            "getFile": lambda: self._get_file(params),
            "setWebhook": lambda: self._set_webhook(params),
            "deleteWebhook": lambda: self._set_webhook(None),
            "getWebhookInfo": self._webhook_info,
        }
        # setMyCommands, deleteMessage, answerCallbackQuery, answerInlineQuery,
        # sendChatAction, close, logOut ...: Telegram answers True.
        return answers.get(method, lambda: True)()

    def user_photo(self, data: bytes) -> list[JSON]:
        """The ``photo`` sizes of a picture a user sends (its bytes served by getFile)."""
        n = next(self._file_ids)
        file_id = f"user-photo-{n}"
        self.files[file_id] = (data, len(data))
        return [{"file_id": file_id, "file_unique_id": f"uu{n}", "width": 96, "height": 96,
                 "file_size": len(data)}]  # fmt: skip

    def _set_webhook(self, params: JSON | None) -> bool:
        self.webhook = params
        return True

    def _webhook_info(self) -> JSON:
        url = self.webhook.get("url", "") if self.webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _document(self, files: dict[str, Upload]) -> JSON:
        doc = files.get("document")
        n = next(self._file_ids)
        return {
            "file_id": f"doc-{n}",
            "file_unique_id": f"udoc-{n}",
            "file_name": doc.filename if doc else "file",
            "mime_type": doc.content_type if doc else "application/octet-stream",
            "file_size": len(doc.data) if doc else 0,
        }

    def _chat_problem(self, method: str, params: JSON) -> str | None:
        if method in {"getChat", "getChatMember"} and _chat_key(params) in self.unknown_chats:
            return "chat not found"
        return None

    def _chat(self, params: JSON) -> JSON:
        chat = _chat_key(params)
        if chat in self.channels:
            kind = "channel"
        else:
            kind = "private" if isinstance(chat, int) and chat > 0 else "supergroup"
        numeric = chat if isinstance(chat, int) else -1009999999999
        return {
            "id": numeric,
            "type": kind,
            "title": "Some chat",
            "accent_color_id": 0,
            "max_reaction_count": 11,
        }

    def _member(self, params: JSON) -> JSON:
        chat_id, user_id = _chat_key(params), int(params["user_id"])
        status = self.members.get((chat_id, user_id), "member")
        member: JSON = {"status": status, "user": user(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(dict.fromkeys(_ADMIN_RIGHTS, True), can_be_edited=False)
            member["is_anonymous"] = False
        elif status == "restricted":
            member.update(_RESTRICTED)
        member.update(self.rights.get((chat_id, user_id), {}))
        return member

    def _photo(self, file_id: object = None) -> list[JSON]:
        if isinstance(file_id, str):  # sent by file_id: Telegram reuses the stored photo
            return [
                {
                    "file_id": file_id,
                    "file_unique_id": f"u-{file_id}",
                    "width": 1024,
                    "height": 1024,
                }
            ]
        n = next(self._file_ids)
        return [
            {"file_id": f"photo-{n}-s", "file_unique_id": f"u{n}s", "width": 90, "height": 90},
            {"file_id": f"photo-{n}", "file_unique_id": f"u{n}", "width": 1024, "height": 1024},
        ]

    def _message(self, params: JSON, **content: Any) -> JSON:
        chat_id = int(params.get("chat_id", 0))
        message_id = int(params.get("message_id") or next(self._message_ids))
        chat_type = "private" if chat_id > 0 else "supergroup"
        message: JSON = {
            "message_id": message_id,
            "date": 1_800_000_000,
            "chat": {"id": chat_id, "type": chat_type},
            "from": BOT_USER,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            # A message carries only an inline keyboard; ForceReply is not sent back.
            message["reply_markup"] = markup
        message.update({k: v for k, v in content.items() if v is not None})
        return message


_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


# A restricted member who may do everything except send photos (tests override the rest).
_RESTRICTED: JSON = {
    "is_member": True,
    "until_date": 0,
    **dict.fromkeys(
        (
            "can_send_messages",
            "can_send_audios",
            "can_send_documents",
            "can_send_videos",
            "can_send_video_notes",
            "can_send_voice_notes",
            "can_send_polls",
            "can_send_other_messages",
            "can_add_web_page_previews",
            "can_change_info",
            "can_invite_users",
            "can_pin_messages",
            "can_manage_topics",
        ),
        True,
    ),
    "can_send_photos": False,
}


def _chat_key(params: JSON) -> int | str:
    """A chat id as the bot gave it: a number, or an ``@username``."""
    chat = str(params["chat_id"])
    return int(chat) if chat.lstrip("-").isdigit() else chat


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


# ----- building updates the way Telegram sends them -----
def user(user_id: int = 42, language_code: str = "en", first_name: str = "Ada") -> JSON:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": language_code,
    }


_next_message_id = itertools.count(10_000)


def command_message(
    text: str,
    *,
    from_user: JSON | None = None,
    chat_id: int | None = None,
    reply_to: JSON | None = None,
) -> JSON:
    """A ``message`` update whose text starts with a bot command (with its entity, as Telegram
    marks it); ``chat_id`` < 0 is a supergroup; ``reply_to`` the message it answers."""
    sender = from_user or user()
    chat_id = sender["id"] if chat_id is None else chat_id
    chat: JSON = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
    if chat_id < 0:
        chat["title"] = "Test group"
    command = text.split(maxsplit=1)[0]
    message: JSON = {
        "message_id": next(_next_message_id),
        "date": 1_800_000_000,
        "chat": chat,
        "from": sender,
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    if command.startswith("/"):
        message["entities"] = [
            {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}
        ]
    return {"message": message}


def photo_message(
    file_id: str,
    size: int,
    caption: str | None,
    *,
    from_user: JSON | None = None,
    chat_id: int | None = None,
    as_document: str | None = None,
) -> JSON:
    """A photo sent with ``caption`` (a command in it marked as Telegram marks it); with
    ``as_document`` (a MIME type) the same picture sent as a file."""
    sender = from_user or user()
    chat_id = sender["id"] if chat_id is None else chat_id
    message: JSON = {
        "message_id": next(_next_message_id),
        "date": 1_800_000_000,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": sender,
    }
    if as_document is not None:
        message["document"] = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_name": "picture",
            "mime_type": as_document,
            "file_size": size,
        }
    else:
        message["photo"] = [
            {"file_id": f"{file_id}-small", "file_unique_id": "small", "width": 90, "height": 90},
            {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "width": 800,
                "height": 600,
                "file_size": size,
            },
        ]
    if caption is not None:
        message["caption"] = caption
        command = caption.split(maxsplit=1)[0] if caption.strip() else ""
        if command.startswith("/"):
            length = len(command.encode("utf-16-le")) // 2
            message["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"message": message}


def text_reply(text: str, to: JSON, *, from_user: JSON | None = None) -> JSON:
    """A plain text message in reply to ``to`` (a message as the bot sent it)."""
    sender = from_user or user()
    chat = to["chat"]
    message: JSON = {
        "message_id": next(_next_message_id),
        "date": 1_800_000_000,
        "chat": chat,
        "from": sender,
        "text": text,
        "reply_to_message": to,
    }
    return {"message": message}


def callback_query(
    data: str, message: JSON, *, from_user: JSON | None = None, query_id: str = "cq1"
) -> JSON:
    """A button press on ``message`` (a message dict as the bot sent it)."""
    return {
        "callback_query": {
            "id": query_id,
            "from": from_user or user(),
            "message": message,
            "chat_instance": "ci-1",
            "data": data,
        }
    }


def inline_query(query: str, *, from_user: JSON | None = None, query_id: str = "iq1") -> JSON:
    return {
        "inline_query": {
            "id": query_id,
            "from": from_user or user(),
            "query": query,
            "offset": "",
        }
    }


def sent_message(call: Call) -> JSON:
    """The message a ``send*`` call produced, as a callback query on it would carry it."""
    assert isinstance(call.result, dict), f"{call.method} returned no message"
    return dict(call.result)
