"""The adapter reports whether its long poll reaches Telegram; PTB retries by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.telegram.conftest import Harness
from tests.telegram.fake_botapi import FakeBotApi, command_message, user


async def until(condition: Callable[[], bool], limit_s: float = 60.0) -> None:
    """Poll while PTB's own retry loop runs (real time: it sleeps between tries)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def test_connected_follows_the_long_poll(api: FakeBotApi, bot: Harness) -> None:
    assert bot.adapter.connected
    api.broken.add("getUpdates")
    await api.push(command_message("/help", from_user=user(42)))  # ends the current long poll
    await until(lambda: not bot.adapter.connected)
    api.broken.discard("getUpdates")
    await until(lambda: bot.adapter.connected)
    # Polling goes on after the outage: a command still gets its answer.
    await api.push(command_message("/help", from_user=user(43)))
    await api.wait_for("sendMessage", count=2, within=30)
