"""The application commands, as Discord shows them; each one hands over to ``Handlers``.

Texts are ``locale_str`` so :class:`adapters.discord.texts.Translator` can give Discord the
Chinese versions when the tree is synced. Styles are an autocomplete (a choice list is cut at
25); aspects are fixed choices.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _

from adapters.discord.handlers import Handlers
from bot.domain import ASPECTS, MAX_SEED, MAX_STEPS, MIN_STEPS

Interaction = discord.Interaction[Any]


def register(tree: app_commands.CommandTree[Any], h: Handlers) -> None:
    """Add every command to ``tree`` (called from the client's ``setup_hook``)."""
    tree.add_command(_imagine(h))
    tree.add_command(_style_group(h))
    tree.add_command(_simple(h))
    tree.add_command(_history(h))
    tree.add_command(_show(h))
    tree.add_command(_help(h))


def _imagine(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="imagine", description=_("Make an image from a prompt"))
    @app_commands.describe(
        prompt=_("What to draw"),
        style=_("A style (type to search)"),
        aspect=_("Picture shape"),
        seed=_("Random seed (same seed, same image)"),
        steps=_("Denoising steps (more is slower)"),
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
    async def imagine(  # noqa: PLR0917 (discord.py reads the options from this signature)
        interaction: Interaction,
        prompt: str,
        style: str | None = None,
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        steps: app_commands.Range[int, MIN_STEPS, MAX_STEPS] | None = None,
    ) -> None:
        await h.imagine(interaction, prompt, style=style, aspect=aspect, seed=seed, steps=steps)

    imagine.autocomplete("style")(h.style_autocomplete)
    return imagine


def _style_group(h: Handlers) -> app_commands.Group:
    group = app_commands.Group(name="style", description=_("Styles"))

    @group.command(name="list", description=_("List the installed styles"))
    async def style_list(interaction: Interaction) -> None:
        await h.style_list(interaction)

    @group.command(name="set", description=_("Set your default style (leave empty to clear)"))
    @app_commands.describe(style=_("A style (type to search)"))
    async def style_set(interaction: Interaction, style: str | None = None) -> None:
        await h.style_set(interaction, style)

    style_set.autocomplete("style")(h.style_autocomplete)
    return group


def _simple(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="queue", description=_("Your jobs in the queue"))
    async def queue(interaction: Interaction) -> None:
        await h.queue(interaction)

    return queue


def _history(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="history", description=_("Your recent images"))
    @app_commands.describe(page=_("Page number"))
    async def history(interaction: Interaction, page: app_commands.Range[int, 1, 1000] = 1) -> None:
        await h.history(interaction, page)

    return history


def _show(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="show", description=_("Post an earlier image again"))
    @app_commands.describe(job=_("Job number"))
    async def show(interaction: Interaction, job: app_commands.Range[int, 1]) -> None:
        await h.show(interaction, job)

    return show


def _help(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="help", description=_("How to use the bot"))
    async def help_(interaction: Interaction) -> None:
        await h.help(interaction)

    return help_
