"""``.env.example`` lists every setting, and loads as it is."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_with_a_comment() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = {field.alias for field in Settings.model_fields.values()}
    listed = re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)
    assert set(listed) == names
    # Each setting (or a group of adjacent ones) sits right under a comment explaining it.
    setting = re.compile(r"^(?:# )?[A-Z][A-Z0-9_]+=")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if setting.match(line):
            above = next(x for x in reversed(lines[:i]) if not setting.match(x))
            assert above.startswith("# "), f"{line!r} has no comment above it"


def test_env_example_loads_to_the_defaults() -> None:
    loaded = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    default = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded.discord_token is None
    assert loaded.telegram_token is None
    assert loaded.wants_console
    assert loaded.model_dump() == default.model_dump()
