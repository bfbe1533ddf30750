"""Shared pieces for the core tests: real SQLite under tmp_path, fake executor and clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.domain import GenerateRequest, Platform, Requester
from bot.service import Core, open_core
from bot.slices import core_settings
from bot.testing.executor import FakeExecutor
from tests.fakes import FakeClock, RecordingNotifier


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "TURBOBOT_DATA_DIR": data_dir,
        "TURBOBOT_METRICS_PORT": 0,
        "TURBOBOT_RATE_PER_MINUTE": 600,
        "TURBOBOT_RATE_BURST": 100,
        "TURBOBOT_MAX_PENDING_PER_USER": 100,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def user(name: str = "alice", server: str | None = None) -> Requester:
    platform = Platform.DISCORD if server else Platform.CONSOLE
    return Requester(platform, name, name.title(), f"chan-{name}", server_id=server)


def request(who: Requester, prompt: str = "a red fox", **kw: Any) -> GenerateRequest:
    return GenerateRequest(requester=who, prompt=prompt, **kw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


OpenCore = Callable[..., AbstractAsyncContextManager[Core]]


@pytest.fixture
def open_test_core(tmp_path: Path, clock: FakeClock, executor: FakeExecutor) -> OpenCore:
    """``async with open_test_core(**settings) as core`` with a recording notifier registered."""

    def factory(*, notifiers: tuple[RecordingNotifier, ...] | None = None, **kw: Any) -> Any:
        settings_kw = {k: v for k, v in kw.items() if k.isupper()}
        core_kw = {k: v for k, v in kw.items() if not k.isupper()}
        settings = make_settings(tmp_path / "data", **settings_kw)

        async def opened() -> AsyncIterator[Core]:
            async with open_core(
                core_settings(settings),
                core_kw.pop("executor", executor),
                clock,
                rng=random.Random(7),
                **core_kw,
            ) as core:
                default = (RecordingNotifier(), RecordingNotifier(platform=Platform.DISCORD))
                for n in notifiers if notifiers is not None else default:
                    core.register(n)
                try:
                    yield core
                except BaseException:
                    # A failed assertion shows at once: no 120 s drain for a job the test
                    # was holding (a closed gate). In-flight work is given up, as on a timeout.
                    await core.drain(0)
                    raise

        from contextlib import asynccontextmanager

        return asynccontextmanager(opened)()

    return factory
