"""The adapter reports its gateway connection; discord.py reconnects by itself after an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.discord.conftest import Bot
from tests.discord.fake_discord import FakeDiscord


async def until(condition: Callable[[], bool], limit_s: float = 60.0) -> None:
    """Poll while discord.py's own backoff runs (real time: its reconnect sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def test_connected_drops_with_the_gateway_and_comes_back(fake: FakeDiscord, bot: Bot) -> None:
    assert bot.adapter.connected
    fake.gateway_down = True
    await fake.drop_connections()
    await until(lambda: not bot.adapter.connected)
    fake.gateway_down = False
    await until(lambda: bot.adapter.connected)
