"""The operator's README states facts the code decides: keep them in step."""

from __future__ import annotations

from pathlib import Path

import discord

from bot import models
from bot.commands import OPTION_NAMES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_invite_permissions_are_the_minimum_the_adapter_uses() -> None:
    # What the Discord adapter does in a channel: post results and showcase copies with the
    # image (send + attach), add the first vote reaction to a showcase post (add reactions,
    # which needs read history).
    needed = discord.Permissions(
        view_channel=True,
        send_messages=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
    )
    assert f"permissions={needed.value}" in README
    in_threads = discord.Permissions(needed.value, send_messages_in_threads=True)
    assert f"`{in_threads.value}`" in README


def test_model_and_turbo_names_match_the_downloader() -> None:
    for name in (models.BASE_MODEL_REPO, models.TURBO_LORA_REPO, models.TURBO_LORA_FILE):
        assert f"`{name}`" in README


def test_every_prompt_option_is_in_the_command_section() -> None:
    for name in OPTION_NAMES:
        assert f"`--{name} " in README, name
