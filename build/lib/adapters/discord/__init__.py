"""Discord adapter: slash commands in, images and buttons out (see ``adapter.DiscordAdapter``)."""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
