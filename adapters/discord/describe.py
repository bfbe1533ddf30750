"""/describe on Discord: the slash command with an attachment, the message context menu
"Describe", the result (plain text that mentions nobody) and its buttons "Imagine this" and
"Edit first" (a modal holding the prompt).

The core already sanitised ``job.text`` (:mod:`bot.textsafe`); mentions are switched off here
too, so an echo of "@everyone" read from a picture pings nobody whatever the text says. The
buttons keep only the job id in their ``custom_id``: the text comes from the core on click.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.format import fit_text
from adapters.discord.handlers import Handlers
from adapters.discord.inputs import ImagineOptions, requester
from adapters.discord.texts import command_text as _
from bot.domain import MAX_INPUT_BYTES, MAX_PROMPT_CHARS, Job, JobAction, Language
from bot.errors import BadRequest
from bot.i18n import msg, t

if TYPE_CHECKING:
    from discord.ui import Item

Interaction = discord.Interaction[Any]
MODAL_TEXT_LIMIT = 4000  # Discord's cap on a text input's value


def described_text(job: Job, lang: Language) -> str:
    return fit_text(t("vlm.described", lang, job=job.id, text=job.text or ""))


async def post_description(channel: Any, job: Job, lang: Language) -> discord.Message:
    message: discord.Message = await channel.send(
        described_text(job, lang),
        view=describe_view(job.id, lang),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    return message


def register(tree: app_commands.CommandTree[Any], h: Handlers) -> None:
    """/describe with an image attachment, and "Describe" on a message's context menu."""

    @app_commands.command(name="describe", description=_("discord.cmd.describe"))
    @app_commands.describe(image=_("discord.opt.describe_image"))
    async def describe(interaction: Interaction, image: discord.Attachment) -> None:
        await describe_attachments(h, interaction, [image])

    async def describe_message(interaction: Interaction, message: discord.Message) -> None:
        await describe_attachments(h, interaction, list(message.attachments))

    tree.add_command(describe)
    tree.add_command(
        app_commands.ContextMenu(name=_("discord.menu.describe"), callback=describe_message)
    )


async def describe_attachments(
    h: Handlers, interaction: Interaction, attachments: list[discord.Attachment]
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    async with h.guard(interaction, "describe"):
        h.check_accepting(interaction)
        picture = next((a for a in attachments if _is_image(a)), None)
        if picture is None:
            raise BadRequest(msg("discord.describe_needs_image"))
        if picture.size > MAX_INPUT_BYTES:  # refused before downloading it
            raise BadRequest(msg("discord.describe_too_big", mb=MAX_INPUT_BYTES // 2**20))
        data = await picture.read()
        lang = await h.lang(interaction)
        await h.queued(interaction, await h.core.describe(requester(interaction), data, lang))


def _is_image(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    name = attachment.filename.lower()
    return kind.startswith("image/") or name.endswith((".jpg", ".jpeg", ".png", ".webp"))


# ---------------------------------------------------------------- the result's buttons


class DescribeButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"tb:desc:(?P<what>imagine|edit):(?P<job>[0-9]{1,18})",
):
    def __init__(self, what: str, job_id: int, lang: Language | str = Language.EN) -> None:
        self.what = what
        self.job_id = job_id
        label, emoji = (
            ("button.imagine_this", "🖼️") if what == "imagine" else ("button.edit_first", "✏️")
        )
        style = discord.ButtonStyle.primary if what == "imagine" else discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(
                label=t(label, lang), emoji=emoji, style=style, custom_id=f"tb:desc:{what}:{job_id}"
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: Item[Any], match: re.Match[str], /
    ) -> DescribeButton:
        return cls(match["what"], int(match["job"]))

    async def callback(self, interaction: Interaction) -> None:
        h: Handlers = interaction.client.handlers
        await on_describe_button(h, interaction, self.what, self.job_id)


def describe_view(job_id: int, lang: Language | str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(DescribeButton("imagine", job_id, lang))
    view.add_item(DescribeButton("edit", job_id, lang))
    return view


async def on_describe_button(h: Handlers, interaction: Interaction, what: str, job_id: int) -> None:
    if what == "imagine":  # a new job at once: imagine() acknowledges first
        prompt = await _described(h, interaction, job_id)
        if prompt is not None:
            await h.imagine(interaction, prompt, ImagineOptions())
        return
    prompt = await _described(h, interaction, job_id)
    if prompt is not None:  # a modal must be the first answer to the click
        lang = await h.lang(interaction)
        await interaction.response.send_modal(EditPromptModal(h, prompt, lang))


async def _described(h: Handlers, interaction: Interaction, job_id: int) -> str | None:
    prompt = None  # stays None when the guard answered with an error
    async with h.guard(interaction, "describe_button", job_id):
        job = await h.core.job_for(requester(interaction), job_id, JobAction.DETAILS)
        if not job.text:
            raise BadRequest(msg("discord.describe_not_ready", job=job_id))
        prompt = job.text
    return prompt  # noqa: RET504 (the guard swallows an error: then None comes back)


class EditPromptModal(discord.ui.Modal):
    """The described prompt in a text box; submitting it imagines the edited text."""

    def __init__(self, h: Handlers, prompt: str, lang: Language) -> None:
        super().__init__(title=t("discord.modal.edit_prompt", lang), timeout=None)
        self._h = h
        self.prompt: discord.ui.TextInput[EditPromptModal] = discord.ui.TextInput(
            label=t("discord.modal.described_prompt", lang),
            style=discord.TextStyle.paragraph,
            default=prompt[:MODAL_TEXT_LIMIT],
            max_length=min(MAX_PROMPT_CHARS, MODAL_TEXT_LIMIT),
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: Interaction) -> None:
        await self._h.imagine(interaction, self.prompt.value, ImagineOptions())
