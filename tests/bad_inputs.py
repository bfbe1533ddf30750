"""The bad-input corpus (``tests/corpus/bad_inputs.json``), read one way for the core's table
(``tests/core/test_corpus.py``) and the platforms' (``tests/test_corpus_platforms.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "corpus" / "bad_inputs.json"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    value: str
    expect: str


def load_cases() -> list[Case]:
    """Every row; ``repeat`` makes long values without storing them."""
    rows: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))["cases"]
    return [
        Case(r["id"], r["kind"], r["value"] * int(r.get("repeat", 1)), r["expect"]) for r in rows
    ]
