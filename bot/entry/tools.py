"""The tools of the ``turbobot`` command: ``download``, ``imagine``, ``styles`` (list, add) and
``bench``: their arguments handed to :mod:`bot.download`, :mod:`bot.entry.imagine` (through the
core) and :mod:`engine.commands`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def engine_command(args: argparse.Namespace) -> int:
    """``imagine``, ``styles`` and ``bench``: the commands that need only the engine."""
    from engine import commands

    if args.command == "imagine":
        from bot.entry import imagine

        return imagine.main(args)
    if args.command == "styles":
        return _styles(args)
    return commands.bench(runs=args.runs, aspect=args.aspect, steps=args.steps)


def download(args: argparse.Namespace) -> int:
    """``turbobot download``: the base model and the Turbo LoRA (both unless one is named)."""
    from bot import download

    both = not (args.model or args.turbo)
    lora_dir = Path(os.environ.get("TURBOBOT_LORA_DIR", "").strip() or "loras")
    return download.main(
        model=args.model or both,
        turbo=args.turbo or both,
        to=args.to,
        lora_dir=lora_dir,
        model_repo=args.model_repo,
        revision=args.revision,
        turbo_repo=args.turbo_repo,
        turbo_file=args.turbo_file,
    )


def _new_style(args: argparse.Namespace) -> Any:
    from engine.style_install import NewStyle

    return NewStyle(
        name=args.name,
        strength=args.strength,
        prompt_prefix=args.prefix,
        prompt_suffix=args.suffix,
        trigger_words=tuple(args.trigger),
        display_name=args.display_name,
        description=args.description,
        nsfw=args.nsfw,
    )


def _styles(args: argparse.Namespace) -> int:
    from engine import commands

    if args.styles_command == "add":
        return commands.styles_add(args.file, _new_style(args))
    return commands.styles()
