"""The real adapter + real python-telegram-bot + real core, against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.service import Core, open_core
from bot.slices import split
from bot.testing.executor import FakeExecutor
from tests.fakes import FakeClock
from tests.telegram.fake_botapi import FakeBotApi

# Shaped like a real token, so a leak into logs would be recognisable.
TOKEN = "123456789:AAE-SECRET-token-never-logged"


@dataclass
class Harness:
    api: FakeBotApi
    core: Core
    adapter: TelegramAdapter
    clock: FakeClock
    executor: FakeExecutor
    settings: Settings


def make_settings(data_dir: Path, base_url: str, **extra: Any) -> Settings:
    """Test settings; ``extra`` adds settings by their environment names."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_TOKEN=SecretStr(TOKEN),
        TELEGRAM_API_BASE_URL=base_url,
        TURBOBOT_DATA_DIR=data_dir,
        TURBOBOT_METRICS_PORT=0,
        TURBOBOT_RATE_BURST=20,
        TURBOBOT_RATE_PER_MINUTE=600,
        **extra,
    )


@asynccontextmanager
async def running_bot(
    api: FakeBotApi,
    data_dir: Path,
    executor: FakeExecutor | None = None,
    clock: FakeClock | None = None,
    settings: Settings | None = None,
    *,
    drain_timeout_s: float = 30.0,
) -> AsyncIterator[Harness]:
    """Wire it like the composition root: core, register, start … stop_intake, drain, aclose."""
    settings = settings or make_settings(data_dir, api.base_url)
    executor = executor or FakeExecutor()
    clock = clock or FakeClock()
    adapter: TelegramAdapter | None = None
    try:
        parts = split(settings)  # as the composition root does: each part gets its slice
        async with open_core(parts.core, executor, clock, drain_timeout_s=drain_timeout_s) as core:
            assert parts.telegram is not None
            adapter = TelegramAdapter(core, parts.telegram, monotonic=clock.monotonic)
            core.register(adapter)
            await adapter.start()
            try:
                yield Harness(api, core, adapter, clock, executor, settings)
            finally:
                await adapter.stop_intake()
    finally:
        if adapter is not None:
            await adapter.aclose()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_bot(api, tmp_path) as harness:
        yield harness
