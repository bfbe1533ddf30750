"""Per-component settings (issue 16): a token reaches only its adapter.

The composition root splits the settings (``bot.slices.split``) and builds the core, the
store, the engine's settings and the adapters from the slices; these tests walk every object
so built, attribute by attribute, looking for each secret's value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from bot.entry.run import build_adapters
from bot.service import open_core
from bot.slices import Slices, split
from bot.testing.executor import FakeExecutor
from tests.core.conftest import make_settings
from tests.fakes import FakeClock

DISCORD = "discord-token-AAAA.BBBB.CCCC"
TELEGRAM = "123456:telegram-token-DDDD"
HOOK_SECRET = "webhook-secret-EEEE"
REDIS_PASSWORD = "redis-password-FFFF"

# Machinery that holds no settings but would drag the walk through the interpreter.
_SKIP_MODULES = ("asyncio", "threading", "logging", "sqlite3", "concurrent", "selectors", "ssl")


def secrets_in(root: object) -> set[str]:
    """Which of the four secrets can be reached from ``root`` through attributes, items,
    closures and bound methods (not through module globals)."""
    wanted = (DISCORD, TELEGRAM, HOOK_SECRET, REDIS_PASSWORD)
    found: set[str] = set()
    for text in _strings(root):
        found.update(s for s in wanted if s in text)
    return found


def _strings(root: object) -> Iterator[str]:
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, int, float, bool)):
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes)):
            yield obj if isinstance(obj, str) else obj.decode("latin-1")
        elif isinstance(obj, SecretStr):
            yield obj.get_secret_value()
        elif type(obj).__module__.split(".")[0] not in _SKIP_MODULES:
            stack.extend(_children(obj))


def _children(obj: object) -> list[object]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, types.MethodType):
        return [obj.__self__, obj.__func__]
    if isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        return [c.cell_contents for c in cells if c.cell_contents is not None]
    kids: list[object] = list(getattr(obj, "__dict__", {}).values())
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            kids.append(getattr(obj, name, None))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kids.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
    return kids


def all_secrets(tmp_path: Path) -> Slices:
    settings = make_settings(
        tmp_path / "data",
        DISCORD_TOKEN=DISCORD,
        TELEGRAM_TOKEN=TELEGRAM,
        TELEGRAM_WEBHOOK_URL="https://bot.example.org/hook",
        TELEGRAM_WEBHOOK_SECRET=HOOK_SECRET,
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        TURBOBOT_CONSOLE=True,
    )
    return split(settings)


def test_the_walk_finds_a_token_wherever_it_is_held() -> None:
    """The detector itself: a token in a slot, a dict, a closure or a SecretStr is found."""

    @dataclasses.dataclass(slots=True)
    class Holder:
        value: object

    held = {"k": [SecretStr(TELEGRAM)]}

    def closure() -> object:
        return held

    assert secrets_in(Holder({"a": (DISCORD,)})) == {DISCORD}
    assert secrets_in(Holder(closure)) == {TELEGRAM}
    assert secrets_in(Holder("nothing here")) == set()


def test_each_slice_holds_only_its_own_secret(tmp_path: Path) -> None:
    parts = all_secrets(tmp_path)
    assert secrets_in(parts.core) == set()
    assert secrets_in(parts.engine) == set()
    assert secrets_in(parts.health) == set()
    assert secrets_in(parts.discord) == {DISCORD}
    assert secrets_in(parts.telegram) == {TELEGRAM, HOOK_SECRET}
    assert secrets_in(parts.pool) == {REDIS_PASSWORD}
    # The one list that holds them all goes to the log filter that redacts them.
    assert set(parts.secrets) == {
        DISCORD,
        TELEGRAM,
        HOOK_SECRET,
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
    }


async def test_no_token_reaches_the_core_the_store_or_the_other_adapter(tmp_path: Path) -> None:
    parts = all_secrets(tmp_path)
    async with open_core(parts.core, FakeExecutor(), FakeClock()) as core:
        adapters = {type(a).__name__: a for a in build_adapters(parts, core, lambda: None)}
        assert set(adapters) == {"DiscordAdapter", "TelegramAdapter", "ConsoleAdapter"}
        assert secrets_in(core) == set()
        assert secrets_in(core._store) == set()
        assert secrets_in(adapters["ConsoleAdapter"]) == set()
        assert secrets_in(adapters["DiscordAdapter"]) == {DISCORD}
        assert TELEGRAM in secrets_in(adapters["TelegramAdapter"])
        assert DISCORD not in secrets_in(adapters["TelegramAdapter"])
        assert REDIS_PASSWORD not in secrets_in(adapters["TelegramAdapter"])
        for adapter in adapters.values():
            await adapter.aclose()
        await asyncio.sleep(0)


def test_the_engine_gets_its_slice_from_the_settings(tmp_path: Path) -> None:
    """The engine's own rules read the same values as the settings did (no drift)."""
    settings = make_settings(tmp_path / "data", TURBOBOT_TURBO_LORA="none")
    engine = split(settings).engine
    assert engine.base_mode
    assert engine.step_range == settings.step_range
    assert engine.resolved_lora_dir == tmp_path / "data" / "tiny" / "loras"
