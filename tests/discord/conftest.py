"""Fixtures: a fake Discord on loopback, settings pointing at it, and the real core + adapter."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest

from adapters.discord import DiscordAdapter
from bot.config import Settings
from bot.service import Core, open_core
from bot.slices import split
from bot.testing.executor import FakeExecutor
from tests.discord.fake_discord import FakeDiscord
from tests.fakes import FakeClock


@pytest.fixture(autouse=True)
def _restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    # The adapter points discord.py's class attributes at the fake; put them back afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as platform:
        yield platform


def make_settings(data_dir: Path, fake: FakeDiscord, **extra: str) -> Settings:
    values = {
        "DISCORD_TOKEN": "x.y.z",
        "DISCORD_API_BASE_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway,
        "TURBOBOT_DATA_DIR": str(data_dir),
        "TURBOBOT_RATE_BURST": "20",
        "TURBOBOT_RATE_PER_MINUTE": "60",
        **extra,
    }
    # model_validate reads neither the environment nor .env: the test sees only these values.
    return Settings.model_validate(values)


@pytest.fixture
def settings(tmp_path: Path, fake: FakeDiscord) -> Settings:
    return make_settings(tmp_path / "data", fake)


@dataclass
class Bot:
    core: Core
    adapter: DiscordAdapter
    executor: FakeExecutor
    clock: FakeClock


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings,
    executor: FakeExecutor,
    clock: FakeClock,
    *,
    drain_timeout_s: float = 30.0,
) -> AsyncIterator[Bot]:
    """The real core and the real adapter, wired the way the composition root wires them.

    Shutdown order: the adapter stops taking commands, the core drains (delivering through the
    still-connected adapter), then the adapter disconnects.
    """
    adapter: DiscordAdapter | None = None
    try:
        parts = split(settings)  # as the composition root does: each part gets its slice
        async with open_core(parts.core, executor, clock, drain_timeout_s=drain_timeout_s) as core:
            assert parts.discord is not None
            adapter = DiscordAdapter(core, parts.discord, clock=clock, guild_ready_timeout=0.05)
            core.register(adapter)
            await adapter.start()
            try:
                yield Bot(core, adapter, executor, clock)
            finally:
                await adapter.stop_intake()
    finally:
        if adapter is not None:
            await adapter.aclose()


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Bot]:
    async with running_bot(settings, FakeExecutor(), FakeClock()) as b:
        yield b
