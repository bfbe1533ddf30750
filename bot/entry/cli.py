"""The ``turbobot`` command: ``run`` (the bot), ``download``, ``doctor``, ``imagine``, ``styles``,
``bench``.

Parsing only; each command's wiring is a module of this package (:mod:`bot.entry.run`,
:mod:`bot.entry.worker`, :mod:`bot.entry.doctor`, :mod:`bot.entry.tools`). Heavy imports are
deferred so ``turbobot --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot import models
from bot.domain import ASPECTS, DEFAULT_ASPECT, DEFAULT_STEPS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="turbobot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start the bot (console chat when no platform token is set)")

    im = sub.add_parser("imagine", help="make images from the command line, through the core")
    im.add_argument("prompt", help="options such as --ar 16:9 may also be typed inside it")
    im.add_argument("--style", default=None)
    im.add_argument("--seed", type=int, default=None)
    im.add_argument("--steps", type=int, default=None)
    im.add_argument("--aspect", default=None, help=", ".join(ASPECTS))
    im.add_argument("--cfg", type=float, default=None)
    im.add_argument("--negative", default=None)
    im.add_argument(
        "--n", type=int, default=None, help="images (a grid in OUTPUT, each in OUTPUT-k)"
    )
    im.add_argument("--image", type=Path, default=None, help="start from this image (img2img)")
    im.add_argument("--strength", type=float, default=None, help="img2img: how far from --image")
    im.add_argument("-o", "--output", type=Path, default=Path("out.jpg"))

    st = sub.add_parser("styles", help="list installed styles, or add one")
    st_sub = st.add_subparsers(dest="styles_command")
    add = st_sub.add_parser(
        "add",
        help="install a style LoRA (checked against the model) as <lora dir>/<name>/",
        description="A running bot offers it after SIGHUP (systemctl reload turbobot).",
    )
    add.add_argument("file", type=Path, help="the LoRA's .safetensors file")
    add.add_argument("--name", required=True, help="what users type: 1-32 of a-z 0-9 _ -")
    add.add_argument("--strength", type=float, default=1.0, help="adapter weight, 0..2")
    add.add_argument("--prefix", default="", help="text put before the user's prompt")
    add.add_argument("--suffix", default="", help="text put after the user's prompt")
    add.add_argument("--trigger", action="append", default=[], help="a trigger word (repeat)")
    add.add_argument("--display-name", default=None, help="shown in menus (default: the name)")
    add.add_argument("--description", default="")
    add.add_argument("--nsfw", action="store_true", help="only in age-restricted channels")

    d = sub.add_parser(
        "doctor", help="check settings, GPU, model and LoRAs before loading any weights"
    )
    d.add_argument(
        "--json", action="store_true", help="one JSON object (ok, problems, plan, loras)"
    )
    d.add_argument(
        "--gpu-gib", type=float, default=None, help="plan for a card with this much free memory"
    )

    b = sub.add_parser("bench", help="per-stage timings and peak memory of the configured model")
    b.add_argument("--runs", type=int, default=3)
    b.add_argument("--aspect", default=DEFAULT_ASPECT)
    b.add_argument("--steps", type=int, default=DEFAULT_STEPS)

    _download_parser(sub)

    w = sub.add_parser(
        "worker", help="serve a bot that has REDIS_URL from this GPU (one process per GPU)"
    )
    w.add_argument("--name", default=None, help="worker id shown in /healthz (default host-pid)")
    w.add_argument(
        "--fake-latency-ms",
        type=float,
        default=None,
        help="BENCHMARKS ONLY: sleep this long instead of rendering (no model, no images)",
    )
    return p


def _download_parser(sub: Any) -> None:
    d = sub.add_parser(
        "download",
        help="download the base model and the Turbo LoRA (resumable, verified)",
        description="Both by default. The model goes to the Hugging Face cache (HF_HOME), the "
        "Turbo LoRA to <lora dir>/turbo/; --to puts both in a folder.",
    )
    d.add_argument("--model", action="store_true", help="only the base model")
    d.add_argument("--turbo", action="store_true", help="only the Turbo LoRA")
    d.add_argument("--to", type=Path, default=None, help="a folder instead of the cache")
    d.add_argument("--model-repo", default=models.BASE_MODEL_REPO)
    d.add_argument("--revision", default="main", help="of the base model (a branch, tag or commit)")
    d.add_argument("--turbo-repo", default=models.TURBO_LORA_REPO)
    d.add_argument("--turbo-file", default=models.TURBO_LORA_FILE, help="another version's file")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("run", "download", "doctor", "worker"):
        return _process_command(args)
    from bot.entry import tools

    return tools.engine_command(args)


def _process_command(args: argparse.Namespace) -> int:
    """The commands that own a whole process: the bot, a worker, the download and doctor."""
    if args.command == "run":
        from bot.entry.run import run

        return run()
    if args.command == "download":
        from bot.entry.tools import download

        return download(args)
    if args.command == "doctor":
        from bot.entry.doctor import main as doctor_main

        return doctor_main(as_json=args.json, gpu_gib=args.gpu_gib)
    from bot.entry.worker import main as worker_main

    return worker_main(name=args.name, fake_latency_ms=args.fake_latency_ms)


if __name__ == "__main__":
    sys.exit(main())
