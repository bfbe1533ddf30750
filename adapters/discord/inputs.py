"""What a Discord interaction brings in, made ready for the core: who asks (and whether the
channel is age-restricted), ``/imagine``'s typed options, an attached picture's bytes
(refused by its announced size first), and the style previews ``/style list`` attaches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import discord

from adapters.discord import format as fmt
from bot.domain import GenerateRequest, Requester, StyleInfo
from bot.errors import BadRequest
from bot.i18n import msg
from bot.images import check_size

_log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10  # Discord's cap on files per message


@dataclass(frozen=True, slots=True)
class ImagineOptions:
    """The typed options of ``/imagine``; the core checks them (and the prompt's own)."""

    style: str | None = None
    aspect: str | None = None
    seed: int | None = None
    steps: int | None = None
    negative: str | None = None
    cfg: float | None = None
    n: int | None = None
    strength: float | None = None  # with an image: how far from it

    def request(self, who: Requester, prompt: str) -> GenerateRequest:
        return GenerateRequest(
            who,
            prompt,
            style=self.style,
            seed=self.seed,
            steps=self.steps,
            aspect=self.aspect,
            cfg=self.cfg,
            negative_prompt=self.negative,
            n=self.n,
            strength=self.strength,
        )


def requester(interaction: discord.Interaction[Any]) -> Requester:
    who = fmt.requester_of(
        interaction.user.id,
        interaction.user.display_name,
        interaction.channel_id,
        interaction.guild_id,
        str(interaction.locale),
    )
    # The core lets nsfw styles run only in age-restricted channels; only Discord knows which.
    return replace(who, channel_nsfw=channel_is_nsfw(interaction.channel))


def channel_is_nsfw(channel: object) -> bool:
    nsfw_kinds = (
        discord.TextChannel,
        discord.VoiceChannel,
        discord.StageChannel,
        discord.ForumChannel,
        discord.Thread,
    )
    return isinstance(channel, nsfw_kinds) and channel.is_nsfw()


def first_image(message: discord.Message) -> discord.Attachment | None:
    """The message's first attachment that says it is an image (the core checks the bytes)."""
    for attachment in message.attachments:
        if (attachment.content_type or "").startswith("image/"):
            return attachment
    return None


async def download(attachment: discord.Attachment) -> bytes:
    """An attachment's bytes, refused by its announced size before anything is downloaded."""
    check_size(attachment.size)
    try:
        return await attachment.read()
    except discord.HTTPException as err:
        _log.info("attachment download failed: %s", err.status)
        raise BadRequest(msg("discord.download_failed")) from None


def load_previews(styles: list[StyleInfo], limit: int) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the previews to attach to ``/style list``, blocking: run off-loop.

    In list order, at most :data:`MAX_ATTACHMENTS`, together within ``limit`` (the
    interaction's upload limit per file; also kept as the total, since a whole request has a
    cap too and previews are small). A preview that vanished since the engine's scan, or is too
    large, is skipped with a log line: the list itself must still be answered.
    """
    out: list[tuple[str, bytes]] = []
    total = 0
    for style in styles:
        if style.preview_path is None or len(out) == MAX_ATTACHMENTS:
            continue
        path = Path(style.preview_path)
        try:
            if path.stat().st_size > limit - total:
                _log.info("preview of style %s skipped: over the upload limit", style.name)
                continue
            data = path.read_bytes()
        except OSError as err:
            _log.warning("preview of style %s unreadable: %s", style.name, err.strerror)
            continue
        if len(data) > limit - total:  # it grew between stat and read
            continue
        out.append((f"{style.name}{path.suffix.lower()}", data))
        total += len(data)
    return out
