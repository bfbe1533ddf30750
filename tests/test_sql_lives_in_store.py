"""Every SQL statement of the core lives under ``bot/store/``: a newcomer looking for a query
finds it there, and the rest of ``bot/`` speaks in store methods, not in SQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "bot" / "store"
# The start of a statement (or a clause only a statement has), upper case as this code writes it.
SQL = re.compile(
    r"\b(SELECT\s.+\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX)|PRAGMA\s+\w+|BEGIN\s+IMMEDIATE|WITH\s+RECURSIVE"
    r"|LEFT\s+JOIN|ON\s+CONFLICT)\b",
    re.DOTALL,
)


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of string literals in ``path`` that look like SQL (f-string parts joined)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if SQL.search(text):
            found.append((node.lineno, text))
    return found


def test_the_scan_recognises_sql() -> None:
    """The pattern must catch what this code base writes (else the next test proves nothing)."""
    statements = [
        "SELECT * FROM jobs WHERE id = ?",
        "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?)",
        "UPDATE shares SET message_id = ? WHERE id = ?",
        "DELETE FROM blocked_users WHERE server_key = ?",
        "PRAGMA synchronous = FULL",
    ]
    assert all(SQL.search(s) for s in statements)
    prose = ["Select a style from the list", "update the settings", "delete the image"]
    assert not any(SQL.search(s) for s in prose)


def test_no_sql_in_bot_outside_the_store() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if STORE not in path.parents
        for line, text in sql_literals(path)
    ]
    assert offenders == []


def test_the_store_holds_sql() -> None:
    """The store is where the scan looks away, so it must be where the statements are."""
    assert any(sql_literals(p) for p in STORE.rglob("*.py"))
