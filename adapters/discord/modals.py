"""Modals: the remix form (an edited prompt and a strength) and "Imagine from image".

A modal is answered within Discord's 3 s in place of a deferral, so opening one does no core
work beyond reading the job. What the user typed goes to the core as typed: it parses and
checks the prompt and the strength (:mod:`bot.validation`); only the text-to-number step is
Discord's form's, since a modal has no number field.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord

from bot.domain import DEFAULT_IMG2IMG_STRENGTH, MAX_STRENGTH, MIN_STRENGTH, Language
from bot.errors import BadRequest
from bot.i18n import msg, t

Lang = Language | str
PROMPT_INPUT_LIMIT = 4000  # Discord's cap on a modal text input (the core's is lower)
STRENGTH_INPUT_LIMIT = 8


class ModalHandler(Protocol):
    """What the modals hand their answers to (implemented by ``handlers.Handlers``)."""

    async def on_remix_submit(
        self,
        interaction: discord.Interaction[Any],
        job_id: int,
        index: int,
        prompt: str | None,
        strength: str,
    ) -> None: ...

    async def on_image_submit(
        self,
        interaction: discord.Interaction[Any],
        attachment: discord.Attachment,
        prompt: str,
        strength: str,
    ) -> None: ...


class _HasModalHandler(Protocol):
    @property
    def handlers(self) -> ModalHandler: ...


def _handler(interaction: discord.Interaction[Any]) -> ModalHandler:
    client: _HasModalHandler = interaction.client
    return client.handlers


def parse_strength(text: str | None) -> float | None:
    """The strength field as a number (empty: None, the core's default); the core checks
    the range. Text that is no number at all is refused here with the range to use."""
    text = (text or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise BadRequest(
            msg(
                "discord.bad_strength",
                value=text[:STRENGTH_INPUT_LIMIT],
                low=MIN_STRENGTH,
                high=MAX_STRENGTH,
            )
        ) from None


def _strength_input(lang: Lang) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        label=t("discord.modal.strength", lang),
        placeholder=t(
            "discord.modal.strength_hint",
            lang,
            low=MIN_STRENGTH,
            high=MAX_STRENGTH,
            default=DEFAULT_IMG2IMG_STRENGTH,
        ),
        required=False,
        max_length=STRENGTH_INPUT_LIMIT,
    )


class RemixModal(discord.ui.Modal):
    """Remix image ``index`` of job ``job_id``: its prompt pre-filled, editable.

    ``prompt`` None (the author hides the details): the field starts empty, and left empty
    it keeps the original prompt, which the remixer never sees."""

    def __init__(self, job_id: int, index: int, prompt: str | None, lang: Lang) -> None:
        super().__init__(
            title=t("discord.modal.remix_title", lang, job=job_id)[:45],
            custom_id=f"tb:remixform:{job_id}:{index}",
            timeout=15 * 60,
        )
        self.job_id = job_id
        self.index = index
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=t("discord.modal.prompt", lang),
            style=discord.TextStyle.paragraph,
            default=prompt,
            required=prompt is not None,
            max_length=PROMPT_INPUT_LIMIT,
        )
        self.strength = _strength_input(lang)
        self.add_item(self.prompt)
        self.add_item(self.strength)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        prompt = self.prompt.value.strip() or None
        await _handler(interaction).on_remix_submit(
            interaction, self.job_id, self.index, prompt, self.strength.value
        )


class ImageModal(discord.ui.Modal):
    """The "Imagine from image" form: the prompt (pre-filled with the message's text) and a strength
    for the image ``attachment``."""

    def __init__(self, attachment: discord.Attachment, prompt: str, lang: Lang) -> None:
        super().__init__(
            title=t("discord.modal.image_title", lang)[:45],
            custom_id=f"tb:imageform:{attachment.id}",
            timeout=15 * 60,
        )
        self.attachment = attachment
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=t("discord.modal.prompt", lang),
            style=discord.TextStyle.paragraph,
            default=prompt[:PROMPT_INPUT_LIMIT] or None,
            max_length=PROMPT_INPUT_LIMIT,
        )
        self.strength = _strength_input(lang)
        self.add_item(self.prompt)
        self.add_item(self.strength)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_image_submit(
            interaction, self.attachment, self.prompt.value, self.strength.value
        )
