"""``turbobot doctor``: will the bot run here, and how? Answered before any weight is loaded.

Checks the settings, torch and the GPU, host RAM and disk, the model's presence, and every LoRA
(Turbo and styles) by its safetensors header mapped onto the configured transformer built on
``meta``; then prints the memory plan per profile, what ``auto`` picks and a rough
seconds-per-image for this GPU (or, on a CPU-only box, for each card size). One line per problem,
each saying what to do. Exit 0 when the bot can run, 1 when not. ``--json`` prints one object.
"""

from __future__ import annotations

import sys

from bot.entry.doctor.checks import diagnose
from bot.entry.doctor.report import Report, to_json, to_text

__all__ = ["Report", "diagnose", "main", "to_json", "to_text"]


def main(*, as_json: bool, gpu_gib: float | None) -> int:
    """Entry point of ``turbobot doctor``: exit 0 when the bot can run, 1 when not."""
    report = diagnose(gpu_gib=gpu_gib)
    print(to_json(report) if as_json else to_text(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(as_json="--json" in sys.argv, gpu_gib=None))
