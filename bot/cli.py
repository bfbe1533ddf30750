"""The ``turbobot`` command: ``run`` (the bot), ``doctor``, ``imagine``, ``styles``, ``bench``.

Parsing only; each command's work lives with the layer it belongs to (``bot.bootstrap`` for
``run``, ``engine.commands`` for the engine-only commands). Heavy imports are deferred so
``turbobot --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.domain import ASPECTS, DEFAULT_ASPECT, DEFAULT_STEPS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="turbobot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start the bot (console chat when no platform token is set)")

    im = sub.add_parser("imagine", help="make one image from the command line")
    im.add_argument("prompt")
    im.add_argument("--style", default=None)
    im.add_argument("--seed", type=int, default=None)
    im.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    im.add_argument("--aspect", default=DEFAULT_ASPECT, help=", ".join(ASPECTS))
    im.add_argument("--cfg", type=float, default=1.0)
    im.add_argument("--negative", default=None)
    im.add_argument("-o", "--output", type=Path, default=Path("out.jpg"))

    sub.add_parser("styles", help="list installed styles")

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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from bot.bootstrap import run

        return run()
    if args.command == "doctor":
        from bot.doctor import main as doctor_main

        return doctor_main(as_json=args.json, gpu_gib=args.gpu_gib)
    if args.command == "worker":
        from engine.worker import main as worker_main

        return worker_main(name=args.name, fake_latency_ms=args.fake_latency_ms)
    from engine import commands

    if args.command == "imagine":
        return commands.imagine(
            prompt=args.prompt,
            style=args.style,
            seed=args.seed,
            steps=args.steps,
            aspect=args.aspect,
            cfg=args.cfg,
            negative_prompt=args.negative,
            output=args.output,
        )
    if args.command == "styles":
        return commands.styles()
    return commands.bench(runs=args.runs, aspect=args.aspect, steps=args.steps)


if __name__ == "__main__":
    sys.exit(main())
