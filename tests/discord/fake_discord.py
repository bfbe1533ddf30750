"""A fake Discord platform on loopback: the REST API and the gateway websocket.

The real discord.py talks to it (``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` point
here), so the adapter under test runs unchanged. Every REST request is recorded; messages the
bot posts are kept so a test can click their buttons the way Discord would (the click carries
the message and its components). Only what the adapter needs is implemented, but what is
implemented answers with the shapes Discord documents.

Community features add: a showcase and an age-restricted channel in the guild, user and channel
options with their ``resolved`` data, chosen member permissions, reactions pushed through the
gateway (MESSAGE_REACTION_ADD / REMOVE) and the bot's own reactions, and component clicks
answered by updating the clicked message (callback type 7).

Iteration (issue 13) adds: files users upload (:meth:`FakeDiscord.upload`), served at their
attachment URL and counted when downloaded, for ``attachment`` options (type 11) and for
messages users post (:meth:`FakeDiscord.user_message`); message context-menu commands
(:meth:`FakeDiscord.message_command`); modals (callback type 9), submitted with
:meth:`FakeDiscord.submit_modal`.

Discord's limits are enforced as Discord enforces them: message content over 2,000 characters,
an embed over its limits, more than 25 choices (autocomplete or a command option) or options, a
``custom_id`` over 100 characters, more than 5 buttons in a row or 5 rows, a command name over
32 characters, a modal over its limits (title or a label over 45 characters, more than 5
inputs, a text input over 4,000 characters) get ``400 Invalid Form Body`` (code 50035); an
interaction acknowledged more than 3 s after it was sent gets ``404 Unknown interaction``
(10062). Every refusal is kept in :attr:`FakeDiscord.refused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from aiohttp import WSMsgType, web

JSON = dict[str, Any]

APP_ID = 900_000_000_000_000_001
BOT_ID = APP_ID
GUILD_ID = 900_000_000_000_000_100
CHANNEL_ID = 900_000_000_000_000_200
SHOWCASE_ID = 900_000_000_000_000_201
NSFW_CHANNEL_ID = 900_000_000_000_000_202
ALICE = 900_000_000_000_000_301
BOB = 900_000_000_000_000_302
CAROL = 900_000_000_000_000_303
ADMIN_PERMISSIONS = str(1 << 3)  # ADMINISTRATOR
MEMBER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 31))  # view, send, use app commands
MANAGE_GUILD_PERMISSIONS = str(int(MEMBER_PERMISSIONS) | (1 << 5))  # a moderator, not an admin
CHANNEL_NAMES = {CHANNEL_ID: "art", SHOWCASE_ID: "showcase", NSFW_CHANNEL_ID: "after-dark"}
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}

OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ATTACHMENT = 11
COMMAND_MESSAGE = 3  # a message context-menu command

CONTENT_LIMIT = 2000
CHOICES_LIMIT = 25
OPTIONS_LIMIT = 25
CUSTOM_ID_LIMIT = 100
ACK_WINDOW_S = 3.0
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBED_TOTAL_LIMIT = 6000
ROW_LIMIT = 5  # buttons in an action row, and rows in a message
COMMAND_NAME_LIMIT = 32
MODAL_TITLE_LIMIT = 45
MODAL_LABEL_LIMIT = 45
MODAL_INPUTS_LIMIT = 5
TEXT_INPUT_LIMIT = 4000
PLACEHOLDER_LIMIT = 100

OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2


@dataclass(frozen=True, slots=True)
class Recorded:
    """One REST request as the bot sent it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: tuple[tuple[str, bytes], ...] = ()
    at: float = 0.0  # event-loop time, to check "within 3 s"


@dataclass
class InteractionLog:
    """What the bot did with one interaction token."""

    id: int
    token: str
    sent_at: float
    callbacks: list[JSON] = field(default_factory=list)
    callback_at: float | None = None
    original: JSON | None = None
    edits: list[JSON] = field(default_factory=list)
    followups: list[JSON] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    message_id: int | None = None  # the message whose component was clicked, if any
    modal: JSON | None = None  # the modal the bot answered with (callback type 9)

    @property
    def callback_type(self) -> int | None:
        return self.callbacks[0]["type"] if self.callbacks else None

    def texts(self) -> list[str]:
        """Every text the user was shown for this interaction, in order."""
        out: list[str] = []
        for body in [*[c.get("data") or {} for c in self.callbacks], *self.edits, *self.followups]:
            content = body.get("content")
            if content:
                out.append(str(content))
        return out


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def user_payload(user_id: int, name: str) -> JSON:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": user_id == BOT_ID,
    }


class FakeDiscord:
    """``async with FakeDiscord() as fake``, then point the bot at ``api_base`` and ``gateway``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.commands: dict[int | None, list[JSON]] = {}  # guild id (None = global) -> commands
        self.messages: dict[int, JSON] = {}
        self.deleted_messages: list[int] = []
        self.interactions: dict[str, InteractionLog] = {}
        self.identified = asyncio.Event()
        self.gateway_down = False
        self.message_posted = asyncio.Event()
        self.fail_next_post: int | None = None  # HTTP status for the next channel message POST
        self.bot_reactions: list[tuple[int, str]] = []  # (message id, emoji) the bot added
        self.attachment_size_limit = 10 * 1024 * 1024  # per interaction, as Discord sends it
        self.refused: list[tuple[str, str, str]] = []  # (method, path, why) of 400/404 answers
        self.display_names: dict[int, str] = {}  # a user's display name, when a test sets one
        self.files: dict[str, bytes] = {}  # attachment path -> bytes, served for downloads
        self.downloads: list[str] = []  # attachment paths the bot downloaded
        self._ids = itertools.count(950_000_000_000_000_000)
        self._seq = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{tail:.*}", self._attachment)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ----------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        if self.gateway_down:  # an outage: discord.py backs off and tries again
            raise web.HTTPServiceUnavailable
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45_000}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._on_gateway_message(ws, json.loads(msg.data))
        finally:
            self._sockets.remove(ws)
        return ws

    async def _on_gateway_message(self, ws: web.WebSocketResponse, msg: JSON) -> None:
        op = msg.get("op")
        if op == 1:  # heartbeat
            await ws.send_json({"op": 11})
        elif op == 6:  # resume after a dropped connection
            await self._send_dispatch(ws, "RESUMED", {})
        elif op == 2:  # identify
            await self._send_dispatch(ws, "READY", self._ready())
            await self._send_dispatch(ws, "GUILD_CREATE", self._guild())
            self.identified.set()

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway socket the way a Discord outage does (the bot should resume)."""
        for ws in list(self._sockets):
            await ws.close(code=code)

    async def _send_dispatch(self, ws: web.WebSocketResponse, event: str, data: JSON) -> None:
        await ws.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})

    async def dispatch(self, event: str, data: JSON) -> None:
        """Push a gateway event to every connected bot."""
        for ws in list(self._sockets):
            await self._send_dispatch(ws, event, data)

    def _ready(self) -> JSON:
        return {
            "v": 10,
            "user": user_payload(BOT_ID, "turbobot"),
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway,
            "application": {"id": str(APP_ID), "flags": 0},
            "shard": [0, 1],
        }

    def _guild(self) -> JSON:
        return {
            "id": str(GUILD_ID),
            "name": "Test Guild",
            "owner_id": str(BOB),
            "unavailable": False,
            "member_count": 3,
            "features": [],
            "emojis": [],
            "stickers": [],
            "members": [],
            "roles": [
                {
                    "id": str(GUILD_ID),
                    "name": "@everyone",
                    "permissions": MEMBER_PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [self._channel(cid) for cid in CHANNEL_NAMES],
        }

    @staticmethod
    def _channel(channel_id: int = CHANNEL_ID) -> JSON:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": CHANNEL_NAMES[channel_id],
            "position": list(CHANNEL_NAMES).index(channel_id),
            "permission_overwrites": [],
            "nsfw": channel_id == NSFW_CHANNEL_ID,
        }

    # ----------------------------------------------------------------- interactions

    def _command_schema(self, name: str) -> tuple[JSON, int | None]:
        for guild, cmds in self.commands.items():
            for cmd in cmds:
                if cmd["name"] == name:
                    return cmd, guild
        raise KeyError(f"command {name!r} was never registered; got {self.registered_names()}")

    def registered_names(self) -> list[str]:
        return sorted(c["name"] for cmds in self.commands.values() for c in cmds)

    def _options(
        self, schema: JSON, values: dict[str, Any], focused: str | None, resolved: JSON
    ) -> list[JSON]:
        """Options as Discord sends them; user and channel ids also go into ``resolved``."""
        by_name = {o["name"]: o for o in schema.get("options", [])}
        out = []
        for name, value in values.items():
            kind = by_name[name]["type"]
            opt = {"name": name, "type": kind, "value": value}
            if kind == OPTION_USER:
                opt["value"] = str(value)
                resolved.setdefault("users", {})[str(value)] = _user(int(value))
                resolved.setdefault("members", {})[str(value)] = _member(int(value))
            elif kind == OPTION_ATTACHMENT:  # a test passes the payload from upload()
                opt["value"] = value["id"]
                resolved.setdefault("attachments", {})[value["id"]] = value
            elif kind == OPTION_CHANNEL:
                opt["value"] = str(value)
                channel = {**self._channel(int(value)), "permissions": MEMBER_PERMISSIONS}
                resolved.setdefault("channels", {})[str(value)] = channel
            if name == focused:
                opt["focused"] = True
            out.append(opt)
        return out

    def _base_interaction(
        self,
        kind: int,
        user: int,
        *,
        admin: bool = False,
        locale: str = "en-US",
        channel: int = CHANNEL_ID,
        permissions: str | None = None,
    ) -> JSON:
        interaction_id = next(self._ids)
        token = f"tok-{interaction_id}"
        perms = permissions or (ADMIN_PERMISSIONS if admin else MEMBER_PERMISSIONS)
        return {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel),
            "channel": self._channel(channel),
            "member": {**self._named_member(user), "permissions": perms},
            "app_permissions": MEMBER_PERMISSIONS,
            "locale": locale,
            "guild_locale": "en-US",
            "attachment_size_limit": self.attachment_size_limit,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
        }

    def _named_member(self, user: int) -> JSON:
        member = _member(user)
        if user in self.display_names:
            member["user"] = {**member["user"], "global_name": self.display_names[user]}
        return member

    def _track(self, payload: JSON) -> InteractionLog:
        loop = asyncio.get_running_loop()
        log = InteractionLog(id=int(payload["id"]), token=payload["token"], sent_at=loop.time())
        self.interactions[log.token] = log
        return log

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        sub: str | None = None,
        user: int = ALICE,
        admin: bool = False,
        focused: str | None = None,
        locale: str = "en-US",
        channel: int = CHANNEL_ID,
        permissions: str | None = None,
    ) -> InteractionLog:
        """Send a slash command (or, with ``focused``, an autocomplete) as a user typed it."""
        schema, guild = self._command_schema(name)
        check_options(schema if sub is None else _sub_schema(schema, sub), options or {})
        payload = self._base_interaction(
            4 if focused else 2,
            user,
            admin=admin,
            locale=locale,
            channel=channel,
            permissions=permissions,
        )
        data: JSON = {"id": schema["id"], "name": name, "type": 1}
        resolved: JSON = {}
        if guild is not None:
            data["guild_id"] = str(guild)
        if sub is None:
            data["options"] = self._options(schema, options or {}, focused, resolved)
        else:
            sub_schema = next(o for o in schema["options"] if o["name"] == sub)
            assert sub_schema["type"] == OPTION_SUB_COMMAND
            inner = self._options(sub_schema, options or {}, focused, resolved)
            data["options"] = [{"name": sub, "type": OPTION_SUB_COMMAND, "options": inner}]
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        log = self._track(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        return log

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user: int = ALICE,
        admin: bool = False,
        values: list[str] | None = None,
        permissions: str | None = None,
    ) -> InteractionLog:
        """Click a button (or pick ``values`` in a select) on a message the bot posted."""
        message = self.messages[message_id]
        component = self._find_component(message, custom_id)
        channel = int(message["channel_id"])
        payload = self._base_interaction(
            3, user, admin=admin, channel=channel, permissions=permissions
        )
        payload["message"] = {k: v for k, v in message.items() if not k.startswith("_")}
        payload["data"] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            payload["data"]["values"] = values
        log = self._track(payload)
        log.message_id = message_id
        await self.dispatch("INTERACTION_CREATE", payload)
        return log

    def upload(
        self, name: str, data: bytes, *, size: int | None = None, content_type: str | None = None
    ) -> JSON:
        """A file a user uploads: its attachment payload (``size`` as Discord announces it,
        the real size unless a test says otherwise); the bytes are served at its URL."""
        attachment_id = next(self._ids)
        path = f"{attachment_id}/{name}"
        self.files[path] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{path}"
        kinds = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg"}
        return {
            "id": str(attachment_id),
            "filename": name,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type or kinds.get(PurePath(name).suffix.lower(), "text/plain"),
        }

    def user_message(self, content: str, attachments: list[JSON], *, user: int = ALICE) -> JSON:
        """A message a user posted in the channel (with files from :meth:`upload`)."""
        message = self._message(CHANNEL_ID, {"content": content}, [], author=_user(user))
        message["attachments"] = attachments
        self.messages[int(message["id"])] = message
        return message

    async def message_command(
        self, name: str, message_id: int, *, user: int = ALICE, locale: str = "en-US"
    ) -> InteractionLog:
        """Use a message context-menu command (Apps → ``name``) on a message."""
        schema, guild = self._command_schema(name)
        assert schema["type"] == COMMAND_MESSAGE, schema
        payload = self._base_interaction(2, user, locale=locale)
        target = {k: v for k, v in self.messages[message_id].items() if not k.startswith("_")}
        data: JSON = {
            "id": schema["id"],
            "name": name,
            "type": COMMAND_MESSAGE,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): target}},
        }
        if guild is not None:
            data["guild_id"] = str(guild)
        payload["data"] = data
        log = self._track(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        return log

    async def submit_modal(
        self, opened: InteractionLog, values: dict[str, str] | None = None, *, user: int = ALICE
    ) -> InteractionLog:
        """Submit the modal the bot opened for ``opened``: each text input keeps its pre-filled
        value unless ``values`` (by the input's position, "0", "1"...) changes it. Discord
        refuses a value over the input's ``max_length`` or a required one left empty."""
        modal = opened.modal
        assert modal is not None, "the bot opened no modal"
        rows = []
        for position, inp in enumerate(_modal_inputs(modal)):
            value = (values or {}).get(str(position), inp.get("value") or "")
            if len(value) > inp.get("max_length", TEXT_INPUT_LIMIT):
                raise Unsendable(f"input {position}: over {inp.get('max_length')} characters")
            if inp.get("required", True) and not value:
                raise Unsendable(f"input {position} is required")
            field_ = {"type": 4, "custom_id": inp["custom_id"], "value": value}
            rows.append({"type": 1, "components": [field_]})
        payload = self._base_interaction(5, user)
        payload["data"] = {"custom_id": modal["custom_id"], "components": rows}
        log = self._track(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        return log

    async def _attachment(self, request: web.Request) -> web.Response:
        """A file a user uploaded (:meth:`upload`), or one the bot posted (``message/name``)."""
        path = request.match_info["tail"]
        if path in self.files:
            self.downloads.append(path)
            return web.Response(body=self.files[path], content_type="application/octet-stream")
        posted = self._posted_file(path)
        if posted is None:
            return web.Response(status=404)
        return web.Response(body=posted, content_type="application/octet-stream")

    def _posted_file(self, path: str) -> bytes | None:
        message_id, _, name = path.partition("/")
        message = self.messages.get(int(message_id)) if message_id.isdigit() else None
        if message is None:
            return None
        names = [a["filename"] for a in message["attachments"]]
        return message["_files"][names.index(name)] if name in names else None

    async def react(
        self, message_id: int, emoji: str, *, user: int = ALICE, added: bool = True
    ) -> None:
        """A user adds (or removes) a unicode-emoji reaction, as the gateway reports it."""
        message = self.messages[message_id]
        data: JSON = {
            "user_id": str(user),
            "channel_id": message["channel_id"],
            "message_id": str(message_id),
            "guild_id": str(GUILD_ID),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if added:
            data["member"] = _member(user)
            data["message_author_id"] = message["author"]["id"]
        await self.dispatch("MESSAGE_REACTION_ADD" if added else "MESSAGE_REACTION_REMOVE", data)

    @staticmethod
    def _find_component(message: JSON, custom_id: str) -> JSON:
        for row in message.get("components", []):
            for comp in row.get("components", []):
                if comp.get("custom_id") == custom_id:
                    return dict(comp)
        raise KeyError(f"no component {custom_id!r} on message {message['id']}")

    async def answered(self, log: InteractionLog, within: float = 5.0) -> InteractionLog:
        await asyncio.wait_for(log.answered.wait(), within)
        return log

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        """Wait until ``predicate()`` is true: checked on every REST request, and every 20 ms
        for conditions that change without one (the core's own progress)."""

        async def poll() -> None:
            while not predicate():
                self.message_posted.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.message_posted.wait(), 0.02)

        await asyncio.wait_for(poll(), within)

    def channel_messages(self, channel_id: int = CHANNEL_ID) -> list[JSON]:
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    def posted_with_files(self) -> list[JSON]:
        return [m for m in self.channel_messages() if m["attachments"]]

    # ----------------------------------------------------------------- REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        loop = asyncio.get_running_loop()
        self.requests.append(
            Recorded(request.method, path, dict(request.query), body, tuple(files), loop.time())
        )
        try:
            problem = form_problem(body)
            if problem is not None:
                self.refused.append((request.method, path, problem))
                return _invalid_form(problem)
            return await self._route(request.method, path.rstrip("/").split("/")[1:], body, files)
        finally:
            self.message_posted.set()

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            files: list[tuple[str, bytes]] = []
            body: Any = None
            for key, value in form.items():
                if key == "payload_json":
                    body = json.loads(str(value))
                elif isinstance(value, web.FileField):
                    files.append((value.filename, value.file.read()))
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    # One case per route reads like the API reference; splitting it would hide that.
    async def _route(  # noqa: PLR0911, PLR0912
        self, method: str, parts: list[str], body: Any, files: list[tuple[str, bytes]]
    ) -> web.StreamResponse:
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return _json(user_payload(BOT_ID, "turbobot"))
            case ("GET", ["oauth2", "applications", "@me"]):
                return _json(self._app_info())
            case ("GET", ["gateway", "bot"]):
                return _json({"url": self.gateway, "shards": 1, "session_start_limit": {}})
            case ("PUT", ["applications", _, "commands"]):
                return _json(self._overwrite(None, body))
            case ("PUT", ["applications", _, "guilds", guild, "commands"]):
                return _json(self._overwrite(int(guild), body))
            case ("POST", ["interactions", _, token, "callback"]):
                return self._callback(token, body, files)
            case (_, ["webhooks", _, token, *rest]):
                return self._webhook(method, token, rest, body, files)
            case ("POST", ["channels", channel, "messages"]):
                return self._post_message(int(channel), body, files)
            case ("GET", ["channels", _, "messages", mid]):
                return _json(self.messages[int(mid)]) if int(mid) in self.messages else _unknown()
            case ("PATCH", ["channels", _, "messages", mid]):
                return self._patch_message(int(mid), body)
            case ("DELETE", ["channels", _, "messages", mid]):
                self.deleted_messages.append(int(mid))
                return web.Response(status=204) if self.messages.pop(int(mid), None) else _unknown()
            case ("PUT", ["channels", _, "messages", mid, "reactions", emoji, "@me"]):
                if int(mid) not in self.messages:
                    return _unknown()
                self.bot_reactions.append((int(mid), urllib.parse.unquote(emoji)))
                return web.Response(status=204)
            case ("GET", ["channels", channel]):
                known = int(channel) in CHANNEL_NAMES
                return _json(self._channel(int(channel))) if known else _unknown()
            case ("GET", ["guilds", guild]):
                return _json(self._guild()) if int(guild) == GUILD_ID else _unknown()
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _app_info(self) -> JSON:
        return {
            "id": str(APP_ID),
            "name": "turbobot",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": user_payload(BOB, "bob"),
            "verify_key": "0" * 64,
            "flags": 0,
        }

    def _overwrite(self, guild: int | None, body: list[JSON]) -> list[JSON]:
        registered = []
        for cmd in body:
            full = {
                **cmd,
                "id": str(next(self._ids)),
                "application_id": str(APP_ID),
                "version": "1",
                "type": cmd.get("type", 1),
                "description": cmd.get("description", ""),  # "" for a context-menu command
            }
            if guild is not None:
                full["guild_id"] = str(guild)
            registered.append(full)
        self.commands[guild] = registered
        return registered

    def _message(
        self, channel_id: int, body: JSON, files: list[tuple[str, bytes]], **extra: Any
    ) -> JSON:
        message_id = next(self._ids)
        attachments = self._attachments(message_id, files)
        msg = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "author": user_payload(BOT_ID, "turbobot"),
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            "allowed_mentions": body.get("allowed_mentions"),
            **extra,
        }
        msg["_files"] = [data for _, data in files]  # kept for tests; discord.py ignores it
        return msg

    def _attachments(self, message_id: int, files: list[tuple[str, bytes]]) -> list[JSON]:
        kinds = {".png": "image/png", ".webp": "image/webp"}
        return [
            {
                "id": str(next(self._ids)),
                "filename": name,
                "size": len(data),
                "url": f"http://127.0.0.1:{self.port}/attachments/{message_id}/{name}",
                "proxy_url": f"http://127.0.0.1:{self.port}/attachments/{message_id}/{name}",
                "content_type": kinds.get(PurePath(name).suffix.lower(), "image/jpeg"),
            }
            for name, data in files
        ]

    def _post_message(
        self, channel_id: int, body: JSON, files: list[tuple[str, bytes]]
    ) -> web.Response:
        if self.fail_next_post is not None:
            status, self.fail_next_post = self.fail_next_post, None
            return _json({"message": "Internal Server Error", "code": 0}, status=status)
        if any(len(data) > self.attachment_size_limit for _, data in files):
            # Discord refuses a file over the upload limit (the guild's, at the free tier).
            self.refused.append(("POST", f"/channels/{channel_id}/messages", "too large"))
            return _json({"message": "Request entity too large", "code": 40005}, status=413)
        msg = self._message(channel_id, body, files)
        self.messages[int(msg["id"])] = msg
        return _json(msg)

    def _patch_message(
        self, message_id: int, body: JSON, files: list[tuple[str, bytes]] | None = None
    ) -> web.Response:
        msg = self.messages.get(message_id)
        if msg is None:
            return _unknown()
        msg.update({k: v for k, v in body.items() if k in {"content", "components", "embeds"}})
        if "attachments" in body:
            # Like Discord: the listed old attachments stay, the uploaded files are added.
            keep = {str(a["id"]) for a in body["attachments"]}
            kept = [a for a in msg["attachments"] if a["id"] in keep]
            msg["attachments"] = kept + self._attachments(message_id, files or [])
            msg["_files"] = [data for _, data in files or []]
        msg["edited_timestamp"] = _now_iso()
        return _json(msg)

    def _callback(self, token: str, body: JSON, files: list[tuple[str, bytes]]) -> web.Response:
        log = self.interactions.get(token)
        if log is None:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        loop = asyncio.get_running_loop()
        if not log.callbacks and loop.time() - log.sent_at > ACK_WINDOW_S:
            # Discord forgets an interaction nobody acknowledged within 3 s.
            self.refused.append(("POST", f"/interactions/{log.id}/{token}/callback", "late"))
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        log.callbacks.append(body)
        log.callback_at = log.callback_at or loop.time()
        kind = body["type"]
        data = body.get("data") or {}
        result: JSON = {
            "interaction": {
                "id": str(log.id),
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            }
        }
        if kind in (4, 5):
            log.original = self._message(CHANNEL_ID, data, files, webhook_id=str(APP_ID))
            self.messages[int(log.original["id"])] = log.original
            result["interaction"]["response_message_id"] = log.original["id"]
            result["resource"] = {"type": kind, "message": log.original}
        elif kind == 9:  # a modal: nothing is posted until the user submits it
            log.modal = data
        elif kind == 7 and log.message_id is not None:  # a click updates its own message
            updated = self._patch_message(log.message_id, data)
            if updated.status != 200:
                return updated
            log.original = self.messages[log.message_id]
            result["interaction"]["response_message_id"] = str(log.message_id)
            result["resource"] = {"type": kind, "message": log.original}
        log.answered.set()
        log.changed.set()
        return _json(result)

    def _webhook(  # noqa: PLR0911
        self, method: str, token: str, rest: list[str], body: Any, files: list[tuple[str, bytes]]
    ) -> web.Response:
        log = self.interactions.get(token)
        if log is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        log.changed.set()
        if method == "POST" and not rest:
            msg = self._message(CHANNEL_ID, body or {}, files, webhook_id=str(APP_ID))
            self.messages[int(msg["id"])] = msg
            log.followups.append(body or {})
            return _json(msg)
        if rest[:1] == ["messages"] and len(rest) == 2:
            target = log.original if rest[1] == "@original" else self.messages.get(int(rest[1]))
            if target is None:
                return _unknown()
            if method == "GET":
                return _json(target)
            if method == "PATCH":
                log.edits.append(body or {})
                return self._patch_message(int(target["id"]), body or {}, files)
            if method == "DELETE":
                self.messages.pop(int(target["id"]), None)
                return web.Response(status=204)
        return _json({"message": "404: Not Found", "code": 0}, status=404)


class Unsendable(ValueError):
    """Discord's client and API refuse this option value before the bot ever sees it."""


MAX_SAFE_INTEGER = 2**53 - 1  # Discord's integer options are JavaScript numbers
STRING_OPTION_LIMIT = 6000
OPTION_STRING = 3
OPTION_INTEGER = 4


def _sub_schema(schema: JSON, sub: str) -> JSON:
    return next(o for o in schema.get("options", []) if o["name"] == sub)


def check_options(schema: JSON, values: dict[str, Any]) -> None:
    """Raise :class:`Unsendable` for a value Discord would not deliver: an integer outside
    its option's range (or ±2^53), a string over 6,000 characters, a value not among the
    option's choices."""
    by_name = {o["name"]: o for o in schema.get("options", [])}
    for name, value in values.items():
        option = by_name[name]
        if option["type"] == OPTION_INTEGER:
            low = option.get("min_value", -MAX_SAFE_INTEGER)
            high = option.get("max_value", MAX_SAFE_INTEGER)
            if not isinstance(value, int) or not max(low, -MAX_SAFE_INTEGER) <= value <= min(
                high, MAX_SAFE_INTEGER
            ):
                raise Unsendable(f"{name}: {value!r} is not an integer from {low} to {high}")
        if option["type"] == OPTION_STRING and len(str(value)) > STRING_OPTION_LIMIT:
            raise Unsendable(f"{name}: over {STRING_OPTION_LIMIT} characters")
        choices = option.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise Unsendable(f"{name}: {value!r} is not one of the choices")


def _embed_problem(embed: JSON) -> str | None:
    total = 0
    for key, limit in EMBED_LIMITS.items():
        size = len(str(embed.get(key) or ""))
        if size > limit:
            return f"embeds.0.{key}: Must be {limit} or fewer in length."
        total += size
    for f in embed.get("fields") or []:
        total += len(str(f.get("name") or "")) + len(str(f.get("value") or ""))
    footer = embed.get("footer") or {}
    total += len(str(footer.get("text") or ""))
    if total > EMBED_TOTAL_LIMIT:
        return f"embeds: Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}"
    return None


def _modal_inputs(modal: JSON) -> list[JSON]:
    """The text inputs of a modal, in order (in action rows, or in labels)."""
    out: list[JSON] = []
    for row in modal.get("components") or []:
        inner = row.get("components") or ([row["component"]] if "component" in row else [row])
        out.extend(c for c in inner if c.get("type") == 4)
    return out


def _modal_problem(modal: JSON) -> str | None:
    if len(str(modal.get("title") or "")) > MODAL_TITLE_LIMIT:
        return f"data.title: Must be {MODAL_TITLE_LIMIT} or fewer in length."
    if len(modal.get("components") or []) > MODAL_INPUTS_LIMIT:
        return f"data.components: Must be {MODAL_INPUTS_LIMIT} or fewer in length."
    return next((p for inp in _modal_inputs(modal) if (p := _input_problem(inp))), None)


def _input_problem(inp: JSON) -> str | None:
    if len(str(inp.get("label") or "")) > MODAL_LABEL_LIMIT:
        return f"label: Must be {MODAL_LABEL_LIMIT} or fewer in length."
    if len(str(inp.get("placeholder") or "")) > PLACEHOLDER_LIMIT:
        return f"placeholder: Must be {PLACEHOLDER_LIMIT} or fewer in length."
    if inp.get("max_length", 0) > TEXT_INPUT_LIMIT:
        return f"max_length: int value should be less than or equal to {TEXT_INPUT_LIMIT}."
    if len(str(inp.get("value") or "")) > inp.get("max_length", TEXT_INPUT_LIMIT):
        return "value: Must be no longer than the input's max_length."
    return None


def _components_problem(rows: list[JSON]) -> str | None:
    if len(rows) > ROW_LIMIT:
        return f"components: Must be {ROW_LIMIT} or fewer in length."
    for row in rows:
        if len(row.get("components") or []) > ROW_LIMIT:
            return f"components.components: Must be {ROW_LIMIT} or fewer in length."
        for comp in row.get("components") or []:
            if len(str(comp.get("custom_id") or "")) > CUSTOM_ID_LIMIT:
                return f"components: custom_id must be {CUSTOM_ID_LIMIT} or fewer in length."
            if len(comp.get("options") or []) > CHOICES_LIMIT:
                return f"components: Must be {CHOICES_LIMIT} or fewer in length."
    return None


def _command_problem(command: JSON) -> str | None:
    if len(str(command.get("name") or "")) > COMMAND_NAME_LIMIT:
        return f"name: Must be {COMMAND_NAME_LIMIT} or fewer in length."
    options = command.get("options") or []
    if len(options) > OPTIONS_LIMIT:
        return f"options: Must be {OPTIONS_LIMIT} or fewer in length."
    for option in options:
        if len(option.get("choices") or []) > CHOICES_LIMIT:
            return f"options.choices: Must be {CHOICES_LIMIT} or fewer in length."
        inner = _command_problem(option)
        if inner is not None:
            return inner
    return None


def form_problem(body: Any) -> str | None:  # noqa: PLR0911 (one return per Discord check)
    """What Discord would call invalid in a request body (its 50035 "errors"), else None."""
    if isinstance(body, list):  # a bulk command overwrite
        return next((p for c in body if (p := _command_problem(c)) is not None), None)
    if not isinstance(body, dict):
        return None
    data: JSON = body["data"] if isinstance(body.get("data"), dict) else body
    if body.get("type") == 9:  # a modal
        return _modal_problem(data)
    content = data.get("content")
    if content is not None and len(str(content)) > CONTENT_LIMIT:
        return f"content: Must be {CONTENT_LIMIT} or fewer in length."
    if len(data.get("choices") or []) > CHOICES_LIMIT:
        return f"choices: Must be {CHOICES_LIMIT} or fewer in length."
    for embed in data.get("embeds") or []:
        problem = _embed_problem(embed)
        if problem is not None:
            return problem
    return _components_problem(data.get("components") or [])


def _invalid_form(problem: str) -> web.Response:
    return _json({"message": f"Invalid Form Body ({problem})", "code": 50035}, status=400)


def _user(user_id: int) -> JSON:
    return user_payload(user_id, NAMES.get(user_id, f"user{user_id % 1000}"))


def _member(user_id: int) -> JSON:
    return {
        "user": _user(user_id),
        "roles": [],
        "joined_at": _now_iso(),
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def _json(data: Any, status: int = 200) -> web.Response:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if not k.startswith("_")}
    # discord.py only parses bodies whose Content-Type is exactly application/json.
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


def _unknown() -> web.Response:
    return _json({"message": "Unknown Message", "code": 10008}, status=404)


@contextlib.asynccontextmanager
async def fake_discord() -> Any:
    async with FakeDiscord() as fake:
        yield fake
