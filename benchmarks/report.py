"""Writes one benchmark's section of BENCHMARKS.md, leaving the other sections alone.

Each benchmark owns the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; a
missing section is appended under ``title``.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine() -> str:
    """CPU model and core count (from /proc/cpuinfo when there is one), Python, date."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    today = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{today}; {model}, {os.cpu_count()} cores; Python {platform.python_version()}"


def write_section(name: str, title: str, body: str, out: Path = OUT) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
    out.write_text(text, encoding="utf-8")
