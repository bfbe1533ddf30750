"""tests/mutants.toml stays usable: every mutant still finds its line (scripts/mutants --check),
and applying one changes exactly that line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mutants", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_finds_its_line() -> None:
    mutants = runner()
    loaded = mutants.load()
    assert len(loaded) >= 22
    assert len({m.id for m in loaded}) == len(loaded)
    for m in loaded:
        assert m.tests, m.id
        assert m.original != m.mutated, m.id
        mutants.locate(m, (ROOT / m.file).read_text(encoding="utf-8"))


def test_a_mutant_changes_one_line_and_keeps_its_indentation() -> None:
    mutants = runner()
    m = mutants.Mutant("x", "f.py", "return a", "return b", ("t",), occurrence=2)
    text = "def f():\n    return a\n\ndef g():\n        return a\n"
    assert mutants.mutate(m, text) == "def f():\n    return a\n\ndef g():\n        return b\n"
    with pytest.raises(ValueError, match="line not found"):
        mutants.mutate(mutants.Mutant("y", "f.py", "nope", "x", ("t",)), text)
