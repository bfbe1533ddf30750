"""The real composition root (``turbobot run``'s ``serve``) with the tiny engine, per platform.

Everything is real except the platforms, which are the loopback fakes of the adapter tests:
settings → executor (tiny Qwen-Image pipeline loaded through ``from_pretrained``) → core
(SQLite) → adapter (discord.py / python-telegram-bot) → a JPEG in the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from PIL import Image

from bot.config import Settings
from bot.domain import JobState
from bot.entry.run import serve
from bot.service import DB_NAME
from engine.loading import load_engine
from tests.discord.fake_discord import ALICE, FakeDiscord
from tests.telegram.fake_botapi import FakeBotApi, command_message, user

SIDE = 64  # the tiny model renders this long side; the real one renders the aspect's size
TELEGRAM_TOKEN = "123456789:AAE-e2e-token-never-logged"


def _settings(data_dir: Path, **env: str) -> Settings:
    base = {
        "TURBOBOT_MODEL": "tiny",
        "TURBOBOT_TINY_SIDE": str(SIDE),
        "TURBOBOT_DATA_DIR": str(data_dir),
        "TURBOBOT_METRICS_PORT": "0",
        "TURBOBOT_CONSOLE": "false",
    }
    return Settings.model_validate(base | env)


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the tiny model and demo styles once; each test gets its own copy."""
    data = tmp_path_factory.mktemp("e2e-template")
    load_engine(_settings(data))
    return data


@pytest.fixture
def data_dir(tiny_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(tiny_template, target)
    return target


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[asyncio.Task[int]]:
    """``serve`` in a task; on exit stop it the way a signal would and expect a clean exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        yield task
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 60) == 0


async def _wait(predicate: object, task: asyncio.Task[int], within: float = 60.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            if task.done():
                task.result()  # surface the error that stopped the bot
                raise AssertionError("the bot stopped early")
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)


def _job_states(data_dir: Path) -> list[tuple[int, str, int]]:
    """Read the bot's database after it stopped, with plain sqlite3."""
    with contextlib.closing(sqlite3.connect(data_dir / DB_NAME)) as db:
        rows = db.execute("SELECT id, state, attempts FROM jobs ORDER BY id").fetchall()
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


@pytest.fixture
def _restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)


@pytest.mark.usefixtures("_restore_discord_urls")
async def test_discord_imagine_through_turbobot_run(data_dir: Path) -> None:
    async with FakeDiscord() as fake:
        settings = _settings(
            data_dir,
            DISCORD_TOKEN="x.y.z",
            DISCORD_API_BASE_URL=fake.api_base,
            DISCORD_GATEWAY_URL=fake.gateway,
        )
        async with running(settings) as task:
            await _wait(lambda: "imagine" in fake.registered_names(), task)
            # Commands are synced before the gateway connects: an interaction sent earlier
            # would reach no socket and be lost.
            await _wait(fake.identified.is_set, task)
            log = await fake.slash(
                "imagine", {"prompt": "一只猫 🐱 in the rain", "style": "ink", "seed": 5}
            )
            await _wait(lambda: bool(fake.posted_with_files()), task)
            message = fake.posted_with_files()[0]
    assert log.callbacks[0]["type"] == 5  # deferred before any generation work
    (jpeg,) = message["_files"]
    image = Image.open(io.BytesIO(jpeg))
    assert (image.format, image.size) == ("JPEG", (SIDE, SIDE))
    assert message["content"].startswith(f"<@{ALICE}>")
    assert "seed 5" in message["content"]
    assert _job_states(data_dir) == [(1, JobState.POSTED, 1)]


async def test_telegram_imagine_through_turbobot_run(data_dir: Path) -> None:
    async with FakeBotApi() as api:
        settings = _settings(
            data_dir, TELEGRAM_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=api.base_url
        )
        async with running(settings) as task:
            await _wait(lambda: bool(api.calls_of("setMyCommands")), task)
            await api.push(
                command_message("/imagine a fox --aspect 16:9 --seed 9", from_user=user(42))
            )
            await _wait(lambda: bool(api.calls_of("sendPhoto")), task)
            photo = api.calls_of("sendPhoto")[0]
            # A bad request gets a clear answer and queues nothing.
            await api.push(command_message("/imagine --steps 99 a fox", from_user=user(42)))
            await _wait(
                lambda: any(
                    "steps" in str(c.params.get("text", "")).lower()
                    for c in api.calls_of("sendMessage")
                ),
                task,
            )
    image = Image.open(io.BytesIO(photo.files["photo"].data))
    assert image.format == "JPEG"
    assert image.size[0] == SIDE  # the tiny model scales the aspect down to its side
    assert image.size[0] > image.size[1]  # 16:9
    assert "seed 9" in photo.params["caption"]
    states = _job_states(data_dir)
    assert states == [(1, JobState.POSTED, 1)]
