"""The Discord adapter: lifecycle (start / stop_intake / aclose) and the core's notifier.

The composition root builds ``DiscordAdapter(core, settings)`` (``settings``: its slice, the one
that holds the Discord token), registers it with the core and
calls ``start()``, which returns once the gateway session is ready. The client runs in a task
the adapter owns (never ``client.run()``). Finished images go out as ordinary channel messages,
which need no interaction token: they arrive after a 15-minute queue and after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import discord
import yarl
from discord import app_commands

from adapters.discord import commands, describe
from adapters.discord import format as fmt
from adapters.discord.describe import DescribeButton, post_description
from adapters.discord.handlers import Handlers
from adapters.discord.status import TOKEN_LIFETIME_S, Tracked, post_result
from adapters.discord.texts import Translator, say
from adapters.discord.views import (
    ForgetButton,
    GalleryButton,
    ImageButton,
    JobButton,
    RestyleSelect,
)
from bot.clock import SystemClock
from bot.domain import Delivered, Job, Language, Platform
from bot.i18n import Message, msg, reply_language
from bot.ports import BotApi, Clock
from bot.slices import DiscordSettings

_log = logging.getLogger(__name__)


class _Tree(app_commands.CommandTree[Any]):
    """Errors raised before a handler runs (bad option types, stale command schema)."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        _log.error(
            "discord command %s rejected (user %s, guild %s): %s",
            interaction.command.name if interaction.command else "?",
            interaction.user.id,
            interaction.guild_id,
            type(error).__name__,
        )
        client: TurbobotClient = interaction.client
        lang = await client.handlers.error_language(interaction)
        with contextlib.suppress(discord.HTTPException):
            text = fmt.fit_text(say(lang, "went_wrong"))
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)


class TurbobotClient(discord.Client):
    """A plain client with an app-command tree; resources come in through the constructor."""

    def __init__(
        self, handlers: Handlers, guild_ids: list[int], guild_ready_timeout: float
    ) -> None:
        super().__init__(
            # Reactions on showcase posts are votes; raw events need no message cache.
            intents=discord.Intents(guilds=True, guild_reactions=True),
            guild_ready_timeout=guild_ready_timeout,
            # Nobody is pinged unless a message asks for it (deliveries mention the requester).
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.handlers = handlers
        self.tree = _Tree(self)
        self.ready_event = asyncio.Event()
        self.gateway_up = False
        self._guild_ids = guild_ids

    async def setup_hook(self) -> None:
        await self.tree.set_translator(Translator())
        # Buttons on images posted before a restart still reach us: the job id is in custom_id.
        self.add_dynamic_items(JobButton, ImageButton, RestyleSelect, GalleryButton, ForgetButton)
        self.add_dynamic_items(DescribeButton)
        commands.register(self.tree, self.handlers)
        describe.register(self.tree, self.handlers)
        if not self._guild_ids:
            await self.tree.sync()
            return
        # Guild commands update at once (global ones can take an hour): handy while testing.
        for guild_id in self._guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.ready_event.set()
        self.gateway_up = True

    # discord.py reconnects by itself; these only keep track for /healthz.
    async def on_resumed(self) -> None:
        self.gateway_up = True

    async def on_disconnect(self) -> None:
        self.gateway_up = False

    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        await self._on_reaction(event, added=True)

    async def on_raw_reaction_remove(self, event: discord.RawReactionActionEvent) -> None:
        await self._on_reaction(event, added=False)

    async def _on_reaction(self, event: discord.RawReactionActionEvent, *, added: bool) -> None:
        bot_id = self.user.id if self.user is not None else None
        await self.handlers.community.on_reaction(event, added=added, bot_id=bot_id)


class DiscordAdapter:
    """Implements ``bot.ports.ChatAdapter`` for Discord."""

    def __init__(
        self,
        core: BotApi,
        settings: DiscordSettings,
        *,
        clock: Clock | None = None,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        self._settings = settings
        self._clock = clock or SystemClock()
        self.handlers = Handlers(core, self._clock)
        self._guild_ready_timeout = guild_ready_timeout
        self._client: TurbobotClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[bool]] = set()

    @property
    def platform(self) -> Platform:
        return Platform.DISCORD

    @property
    def connected(self) -> bool:
        client, runner = self._client, self._runner
        return client is not None and client.gateway_up and runner is not None and not runner.done()

    @property
    def client(self) -> TurbobotClient:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Log in, sync commands and connect; returns when the gateway session is ready."""
        self._point_at_configured_platform()
        token = self._settings.discord_token
        client = TurbobotClient(
            self.handlers, list(self._settings.guild_ids), self._guild_ready_timeout
        )
        self._client = client
        self._runner = asyncio.create_task(client.start(token.get_secret_value()), name="discord")
        ready = asyncio.create_task(client.ready_event.wait())
        await asyncio.wait({self._runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            error = self._runner.exception()
            await self.aclose()
            raise RuntimeError("the Discord client stopped before it was ready") from error

    def _point_at_configured_platform(self) -> None:
        # Class attributes of discord.py: set only when configured, so production stays default.
        if self._settings.discord_api_base_url:
            discord.http.Route.BASE = self._settings.discord_api_base_url.rstrip("/")
        if self._settings.discord_gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
                self._settings.discord_gateway_url
            )

    async def stop_intake(self) -> None:
        """New work is refused politely; deliveries and read-only buttons keep working."""
        self.handlers.accepting = False

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            # Errors of the runner were raised by start() or logged by discord.py already.
            await asyncio.gather(runner, return_exceptions=True)
        self._client = None
        self._runner = None

    # ----------------------------------------------------------------- notifier

    async def progress(self, job: Job, step: int, total: int) -> None:
        tracked = self.handlers.status.due_for_progress(job.id)
        if tracked is None:
            return
        text = f"#{job.id} · " + say(tracked.lang, "running", step=step, total=total)
        # The edit runs beside the job: a slow Discord must not slow the GPU loop.
        tracked.pending = self._spawn(self._edit(tracked, text))

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        channel = self.client.get_partial_messageable(
            int(job.requester.channel_id),
            guild_id=None if job.requester.server_id is None else int(job.requester.server_id),
        )
        lang = await self._job_language(job)
        credit = await self.handlers.community.remix_credit(job, lang)
        limit = self._upload_limit(job)
        message = await post_result(channel, job, Path(jpeg_path), limit, credit=credit, lang=lang)
        await self._finish(job, "done", link=message.jump_url)
        return Delivered(message_id=str(message.id), channel_id=str(message.channel.id))

    async def deliver_text(self, job: Job) -> Delivered:
        channel = self.client.get_partial_messageable(int(job.requester.channel_id))
        lang = await self._job_language(job)
        message = await post_description(channel, job, lang)
        await self._finish(job, "done", link=message.jump_url)
        return Delivered(message_id=str(message.id), channel_id=str(message.channel.id))

    async def failed(self, job: Job, reason: Message | str) -> None:
        lang = await self._job_language(job)  # before _finish forgets the requester's reply
        if await self._finish(job, "failed", reason=reason):
            return
        # No live interaction (restart, long queue): tell the requester in the channel.
        channel = self.client.get_partial_messageable(int(job.requester.channel_id))
        mention = discord.AllowedMentions(users=[discord.Object(int(job.requester.user_id))])
        text = f"<@{job.requester.user_id}> #{job.id} · " + say(lang, "failed", reason=reason)
        await channel.send(fmt.fit_text(text), allowed_mentions=mention)

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        # A partial message: one DELETE request, no fetch first. Discord lets a bot delete
        # its own messages at any age.
        channel = self.client.get_partial_messageable(int(channel_id))
        await channel.get_partial_message(int(message_id)).delete()

    # ----------------------------------------------------------------- helpers

    async def _finish(self, job: Job, key: str, **values: object) -> bool:
        """Show the final word in the ephemeral reply, if there is one; True if it was shown."""
        tracked = self.handlers.status.untrack(job.id)
        if tracked is None:
            # The /imagine may not have said "queued" yet (a fast GPU): it will show this instead.
            self.handlers.status.remember_finished(job.id, msg(f"discord.{key}", **values))
            return False
        text = f"#{job.id} · " + say(tracked.lang, key, **values)
        if self._clock.monotonic() - tracked.opened_at > TOKEN_LIFETIME_S:
            return False
        # Let a progress edit in flight land first, so "done" is not overwritten by "step 3/4".
        if tracked.pending is not None:
            await asyncio.gather(tracked.pending, return_exceptions=True)
        return await self._edit(tracked, text)

    async def _edit(self, tracked: Tracked, text: str) -> bool:
        try:
            await tracked.interaction.edit_original_response(content=fmt.fit_text(text))
        except discord.HTTPException as err:
            # A dead token or a deleted reply is not worth retrying (invalid requests get bans).
            _log.info("could not edit an interaction reply: %s %s", err.status, err.code)
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, bool]) -> asyncio.Task[bool]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _job_language(self, job: Job) -> Language:
        """The core's rule for a job's channel posts: the server's language when it chose one,
        else the requester's own, stored with the job (so also after a restart)."""
        chosen = await self.handlers.community.server_language(job.requester.server_id)
        return reply_language(chosen, job.requester.language)

    def _upload_limit(self, job: Job) -> int:
        if job.requester.server_id is not None and self._client is not None:
            guild = self._client.get_guild(int(job.requester.server_id))
            if guild is not None:
                return int(guild.filesize_limit)
        return fmt.DEFAULT_UPLOAD_LIMIT
