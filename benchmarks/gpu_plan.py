"""Regenerate BENCHMARKS.md's GPU memory table from the memory plan (no GPU needed).

    .venv/bin/python -m benchmarks.gpu_plan

The numbers come from :mod:`engine.plan` (the real configs built on ``meta``), never by hand.
"""

from __future__ import annotations

from benchmarks.report import write_section
from engine.plan_table import markdown


def main() -> None:
    block = markdown()
    print(block)
    write_section("engine:plan", "GPU memory plan (computed)", block)


if __name__ == "__main__":
    main()
