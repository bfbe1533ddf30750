"""The operator's README states facts the code decides: keep them in step."""

from __future__ import annotations

import re
from pathlib import Path

import discord

from bot import models
from bot.commands import OPTION_NAMES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


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


def _where_table() -> list[tuple[str, str]]:
    """The rows (question, answer) of the README's "Where does X live" table."""
    section = README.split("### Where does X live", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [(q.strip("| "), a.strip("| ")) for q, a in (r[:2] for r in rows[2:])]


def _named_paths(cell: str) -> list[str]:
    """Backticked paths in a cell, braces expanded (``adapters/{discord,telegram}/x.py``)."""
    paths: list[str] = []
    for token in re.findall(r"`([^`]+)`", cell):
        if "/" not in token or " " in token or token.startswith("/"):  # `/forget`: a command
            continue
        head, brace, rest = token.partition("{")
        if not brace:
            paths.append(token)
            continue
        options, _, tail = rest.partition("}")
        paths.extend(head + option + tail for option in options.split(","))
    return paths


def test_every_path_in_the_where_does_x_live_table_exists() -> None:
    rows = _where_table()
    assert len(rows) >= 20  # the table was found and read
    for question, answer in rows:
        paths = _named_paths(answer)
        assert paths, f"the row {question!r} names no module"
        for path in paths:
            assert list(REPO.glob(path.rstrip("/"))), f"{path} (row {question!r}) does not exist"
