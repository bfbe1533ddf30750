"""/describe's result on Discord: the prompt the VLM wrote, as plain text that mentions nobody.

The core already sanitised ``job.text`` (:mod:`bot.textsafe`); mentions are switched off here
too, so an echo of "@everyone" read from a picture can ping nobody whatever the text says.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.format import fit_text
from bot.domain import Job, Language
from bot.i18n import t


def described_text(job: Job, lang: Language) -> str:
    return fit_text(t("vlm.described", lang, job=job.id, text=job.text or ""))


async def post_description(channel: Any, job: Job, lang: Language) -> discord.Message:
    message: discord.Message = await channel.send(
        described_text(job, lang), allowed_mentions=discord.AllowedMentions.none()
    )
    return message
