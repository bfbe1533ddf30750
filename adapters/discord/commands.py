"""The application commands, as Discord shows them; each one hands over to ``Handlers``.

Texts are catalogue keys (a ``locale_str`` with a ``key``), so
:class:`adapters.discord.texts.Translator` can give Discord the Chinese versions when the tree
is synced. Styles are an autocomplete (a choice list is cut at
25); aspects are fixed choices. Admin commands carry ``default_member_permissions`` (Manage
Server) so Discord hides them from members; the handlers check again, since a server's admins
can open any command to everybody.
"""

from __future__ import annotations

from typing import Any, Optional

import discord
from discord import app_commands

from adapters.discord.handlers import Handlers
from adapters.discord.inputs import ImagineOptions
from adapters.discord.texts import command_text as _
from adapters.discord.views import GALLERY_PERIODS, GALLERY_SORTS
from bot.domain import (
    ASPECTS,
    MAX_CFG,
    MAX_IMAGES,
    MAX_SEED,
    MAX_STRENGTH,
    MIN_CFG,
    MIN_IMAGES,
    MIN_STRENGTH,
    SafetyMode,
    StepRange,
)

ADMIN = discord.Permissions(manage_guild=True)
LANGUAGES = [
    app_commands.Choice(name="English", value="en"),
    app_commands.Choice(name="中文", value="zh"),
]
# The image safety check's modes, typed as the operator's TURBOBOT_SAFETY_CHECK takes them.
SAFETY_MODES = [app_commands.Choice(name=str(m), value=str(m)) for m in SafetyMode]

Interaction = discord.Interaction[Any]


def register(tree: app_commands.CommandTree[Any], h: Handlers) -> None:
    """Add every command to ``tree`` (called from the client's ``setup_hook``)."""
    tree.add_command(_imagine(h))
    tree.add_command(_image_menu(h))
    tree.add_command(_style_group(h))
    tree.add_command(_styles_admin(h))
    tree.add_command(_simple(h))
    tree.add_command(_history(h))
    tree.add_command(_show(h))
    tree.add_command(_help(h))
    tree.add_command(_settings_group(h))
    for command in (_gallery(h), _privacy(h), _forget(h), *_moderation(h)):
        tree.add_command(command)


def _imagine(h: Handlers) -> app_commands.Command[Any, ..., None]:
    async def imagine(  # noqa: PLR0917 (discord.py reads the options from this signature)
        interaction: Interaction,
        prompt: str,
        style: str | None = None,
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        steps: int | None = None,
        negative: str | None = None,
        cfg: app_commands.Range[float, MIN_CFG, MAX_CFG] | None = None,
        n: app_commands.Range[int, MIN_IMAGES, MAX_IMAGES] | None = None,
        image: discord.Attachment | None = None,
        strength: app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH] | None = None,
    ) -> None:
        # The prompt goes to the core as typed: it parses "--ar 16:9" and the like itself.
        options = ImagineOptions(
            style=style,
            aspect=aspect,
            seed=seed,
            steps=steps,
            negative=negative,
            cfg=cfg,
            n=n,
            strength=strength,
        )
        await h.imagine(interaction, prompt, options, image)

    # The steps Discord lets users pick are the core's (Turbo's 1-8, or base mode's range),
    # so the annotation is set here, before discord.py reads the signature.
    imagine.__annotations__["steps"] = Optional[steps_option(h.core.step_range)]  # noqa: UP045
    imagine = app_commands.describe(
        prompt=_("discord.opt.prompt"),
        style=_("discord.opt.style"),
        aspect=_("discord.opt.aspect"),
        seed=_("discord.opt.seed"),
        steps=_("discord.opt.steps"),
        negative=_("discord.opt.negative"),
        cfg=_("discord.opt.cfg"),
        n=_("discord.opt.n"),
        image=_("discord.opt.image"),
        strength=_("discord.opt.strength"),
    )(imagine)
    imagine = app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])(
        imagine
    )
    command: app_commands.Command[Any, ..., None] = app_commands.command(
        name="imagine", description=_("discord.cmd.imagine")
    )(imagine)
    command.autocomplete("style")(h.style_autocomplete)
    return command


def _image_menu(h: Handlers) -> app_commands.ContextMenu:
    """A message's menu (Apps): "Imagine from image" on a message with a picture."""

    async def imagine_from_image(interaction: Interaction, message: discord.Message) -> None:
        await h.image_from_message(interaction, message)

    return app_commands.ContextMenu(
        name=_("discord.cmd.imagine_from_image"), callback=imagine_from_image
    )


def steps_option(steps: StepRange) -> Any:
    """The ``steps`` option's type: an integer limited to the core's step range."""
    return app_commands.Range[int, steps.low, steps.high]


def _styles_admin(h: Handlers) -> app_commands.Group:
    # Operators only: hidden from members by default, and the core checks the operator list.
    group = app_commands.Group(
        name="styles", description=_("discord.cmd.styles"), default_permissions=ADMIN
    )

    @group.command(name="rescan", description=_("discord.cmd.styles_rescan"))
    async def rescan(interaction: Interaction) -> None:
        await h.styles_rescan(interaction)

    return group


def _style_group(h: Handlers) -> app_commands.Group:
    group = app_commands.Group(name="style", description=_("discord.cmd.style"))

    @group.command(name="list", description=_("discord.cmd.style_list"))
    async def style_list(interaction: Interaction) -> None:
        await h.style_list(interaction)

    @group.command(name="set", description=_("discord.cmd.style_set"))
    @app_commands.describe(style=_("discord.opt.style"))
    async def style_set(interaction: Interaction, style: str | None = None) -> None:
        await h.style_set(interaction, style)

    style_set.autocomplete("style")(h.style_autocomplete)
    return group


def _simple(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="queue", description=_("discord.cmd.queue"))
    async def queue(interaction: Interaction) -> None:
        await h.queue(interaction)

    return queue


def _history(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="history", description=_("discord.cmd.history"))
    @app_commands.describe(page=_("discord.opt.page"))
    async def history(interaction: Interaction, page: app_commands.Range[int, 1, 1000] = 1) -> None:
        await h.history(interaction, page)

    return history


def _show(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="show", description=_("discord.cmd.show"))
    @app_commands.describe(job=_("discord.opt.job"))
    async def show(interaction: Interaction, job: app_commands.Range[int, 1]) -> None:
        await h.show(interaction, job)

    return show


def _help(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="help", description=_("discord.cmd.help"))
    async def help_(interaction: Interaction) -> None:
        await h.help(interaction)

    return help_


def _settings_group(h: Handlers) -> app_commands.Group:
    group = app_commands.Group(
        name="settings",
        description=_("discord.cmd.settings"),
        default_permissions=ADMIN,
        guild_only=True,
    )

    @group.command(name="show", description=_("discord.cmd.settings_show"))
    async def show(interaction: Interaction) -> None:
        await h.community.settings_show(interaction)

    @group.command(name="set", description=_("discord.cmd.settings_set"))
    @app_commands.describe(
        default_style=_("discord.opt.default_style"),
        allowed_styles=_("discord.opt.allowed_styles"),
        rate_per_minute=_("discord.opt.rate_per_minute"),
        rate_burst=_("discord.opt.rate_burst"),
        pending_cap=_("discord.opt.pending_cap"),
        showcase_channel=_("discord.opt.showcase_channel"),
        banned_words=_("discord.opt.banned_words"),
        share_outside=_("discord.opt.share_outside"),
        language=_("discord.opt.language"),
        safety_check=_("discord.opt.safety_check"),
        reset=_("discord.opt.reset"),
    )
    @app_commands.choices(language=LANGUAGES, safety_check=SAFETY_MODES)
    async def set_(  # noqa: PLR0917 (discord.py reads the options from this signature)
        interaction: Interaction,
        default_style: str | None = None,
        allowed_styles: str | None = None,
        rate_per_minute: app_commands.Range[float, 0.0, 600.0] | None = None,
        rate_burst: app_commands.Range[int, 1, 100] | None = None,
        pending_cap: app_commands.Range[int, 1, 100] | None = None,
        showcase_channel: discord.TextChannel | None = None,
        banned_words: str | None = None,
        share_outside: bool | None = None,
        language: str | None = None,
        safety_check: str | None = None,
        reset: str | None = None,
    ) -> None:
        await h.community.settings_set(
            interaction,
            default_style=default_style,
            allowed_styles=allowed_styles,
            rate_per_minute=rate_per_minute,
            rate_burst=rate_burst,
            pending_cap=pending_cap,
            showcase_channel=showcase_channel,
            banned_words=banned_words,
            share_outside=share_outside,
            language=language,
            safety_check=safety_check,
            reset=reset,
        )

    set_.autocomplete("default_style")(h.style_autocomplete)
    return group


def _gallery(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="gallery", description=_("discord.cmd.gallery"))
    @app_commands.describe(sort=_("discord.opt.sort"), period=_("discord.opt.period"))
    @app_commands.choices(
        sort=[app_commands.Choice(name=s, value=s) for s in GALLERY_SORTS],
        period=[app_commands.Choice(name=p, value=p) for p in GALLERY_PERIODS],
    )
    @app_commands.guild_only()
    async def gallery(interaction: Interaction, sort: str = "recent", period: str = "all") -> None:
        await h.community.gallery(interaction, sort, period)

    return gallery


def _privacy(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="privacy", description=_("discord.cmd.privacy"))
    @app_commands.describe(
        share_opt_out=_("discord.opt.share_opt_out"),
        hide_details=_("discord.opt.hide_details"),
    )
    async def privacy(
        interaction: Interaction,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> None:
        await h.community.privacy(interaction, share_opt_out, hide_details)

    return privacy


def _forget(h: Handlers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="forget", description=_("discord.cmd.forget"))
    async def forget(interaction: Interaction) -> None:
        await h.community.forget(interaction)

    return forget


def _moderation(h: Handlers) -> list[app_commands.Command[Any, ..., None]]:
    @app_commands.command(name="block", description=_("discord.cmd.block"))
    @app_commands.describe(user=_("discord.opt.user"))
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def block(interaction: Interaction, user: discord.User) -> None:
        await h.community.block(interaction, user, blocked=True)

    @app_commands.command(name="unblock", description=_("discord.cmd.unblock"))
    @app_commands.describe(user=_("discord.opt.user"))
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def unblock(interaction: Interaction, user: discord.User) -> None:
        await h.community.block(interaction, user, blocked=False)

    @app_commands.command(name="audit", description=_("discord.cmd.audit"))
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def audit(interaction: Interaction) -> None:
        await h.community.audit(interaction)

    return [block, unblock, audit]
