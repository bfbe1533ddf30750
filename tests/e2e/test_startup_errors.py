"""Misconfigurations, each run as a real ``turbobot run`` (and ``turbobot worker``): one line per
problem, exit code 2, no traceback, and no model load (a guard timeout far below a model load).

Tokens are checked against loopback fakes of Discord and Telegram that accept one token each; a
worker never talks to either, so it does not check them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.telegram.fake_botapi import FakeBotApi

pytestmark = pytest.mark.slow

GOOD_DISCORD = "good-discord-token"
GOOD_TELEGRAM = "7000001:good-telegram-token"
BAD_DISCORD = "MTAxMjM0NTY3ODkwMTIzNDU2.Gabcde.wrongwrongwrongwrongwrongwrong1"
BAD_TELEGRAM = "7000001:AAwrongwrongwrongwrongwrongwrongwrong"
STARTUP_LIMIT_S = 15.0  # a guard: a model load on real weights takes minutes


@dataclass(frozen=True)
class Platforms:
    discord_api: str
    telegram_api: str


async def _users_me(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bot {GOOD_DISCORD}":
        return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
    return web.json_response({"id": "1", "username": "turbobot", "bot": True})


@pytest.fixture
async def platforms() -> AsyncIterator[Platforms]:
    app = web.Application()
    app.router.add_get("/api/v10/users/@me", _users_me)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with FakeBotApi(valid_token=GOOD_TELEGRAM) as telegram:
        yield Platforms(f"http://127.0.0.1:{port}/api/v10", telegram.base_url)
    await runner.cleanup()


@dataclass(frozen=True)
class Case:
    name: str
    env: dict[str, str]
    expect: tuple[str, ...]  # one substring per expected line
    files: dict[str, str] = field(default_factory=dict)  # relative path -> content


CASES = [
    Case("guild ids", {"DISCORD_GUILD_IDS": "my-server"}, ("DISCORD_GUILD_IDS=my-server",)),
    Case(
        "memory profile",
        {"TURBOBOT_MEMORY_PROFILE": "fast"},
        ("TURBOBOT_MEMORY_PROFILE=fast: Input should be 'auto'",),
    ),
    Case("log level", {"TURBOBOT_LOG_LEVEL": "loud"}, ("TURBOBOT_LOG_LEVEL=loud",)),
    Case(
        "model path",
        {"TURBOBOT_MODEL": "/no/such/model", "TURBOBOT_TURBO_LORA": "none"},
        ("TURBOBOT_MODEL: '/no/such/model' is neither a folder nor in the Hugging Face cache",),
    ),
    Case(
        "model folder without model_index.json",
        {"TURBOBOT_MODEL": "{tmp}/weights", "TURBOBOT_TURBO_LORA": "none"},
        ("has no model_index.json",),
        files={"weights/README": "not a model"},
    ),
    Case(
        "turbo path",
        {"TURBOBOT_TURBO_LORA": "{tmp}/missing.safetensors"},
        ("TURBOBOT_TURBO_LORA: {tmp}/missing.safetensors does not exist",),
    ),
    Case(
        "turbo missing with a real model",
        {"TURBOBOT_MODEL": "{tmp}/weights", "TURBOBOT_LORA_DIR": "{tmp}/loras"},
        ("no Turbo LoRA in {tmp}/loras/turbo/; run `turbobot download --turbo`",),
        files={"weights/model_index.json": "{}", "loras/keep": ""},
    ),
    Case(
        "several turbo candidates",
        {"TURBOBOT_MODEL": "{tmp}/weights", "TURBOBOT_LORA_DIR": "{tmp}/loras"},
        ("several LoRAs (a.safetensors, b.safetensors)",),
        files={
            "weights/model_index.json": "{}",
            "loras/turbo/a.safetensors": "",
            "loras/turbo/b.safetensors": "",
        },
    ),
    Case("env file", {"TURBOBOT_ENV_FILE": "{tmp}/nope.env"}, ("TURBOBOT_ENV_FILE: ",)),
    Case(
        "data dir .env read, empty values unset",
        {},
        ("TURBOBOT_MEMORY_PROFILE=fast",),
        files={"data/.env": "DISCORD_TOKEN=\nTELEGRAM_TOKEN=\nTURBOBOT_MEMORY_PROFILE=fast\n"},
    ),
    Case("discord token", {"DISCORD_TOKEN": BAD_DISCORD}, ("DISCORD_TOKEN: Discord rejected",)),
    Case(
        "telegram token", {"TELEGRAM_TOKEN": BAD_TELEGRAM}, ("TELEGRAM_TOKEN: Telegram rejected",)
    ),
    Case(
        "everything at once",
        {
            "DISCORD_TOKEN": BAD_DISCORD,
            "TELEGRAM_TOKEN": BAD_TELEGRAM,
            "DISCORD_GUILD_IDS": "123,my-server",
            "TURBOBOT_MEMORY_PROFILE": "fast",
        },
        (
            "DISCORD_GUILD_IDS=123,my-server",
            "TURBOBOT_MEMORY_PROFILE=fast",
            "DISCORD_TOKEN: Discord rejected",
            "TELEGRAM_TOKEN: Telegram rejected",
        ),
    ),
]


def _env(tmp: Path, platforms: Platforms, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_"))
    }
    env |= {
        "TURBOBOT_DATA_DIR": str(tmp / "data"),
        "TURBOBOT_METRICS_PORT": "0",
        "DISCORD_API_BASE_URL": platforms.discord_api,
        "TELEGRAM_API_BASE_URL": platforms.telegram_api,
        "HF_HUB_OFFLINE": "1",
    }
    return env | {k: v.replace("{tmp}", str(tmp)) for k, v in extra.items()}


async def run_turbobot(
    tmp: Path, env: dict[str, str], command: str = "run"
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.entry.cli",
        command,
        cwd=tmp,  # no stray ./.env from the repository
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), STARTUP_LIMIT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"turbobot {command} took over {STARTUP_LIMIT_S} s: it went past the checks")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _write_files(tmp: Path, case: Case) -> None:
    for rel, content in case.files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _assert_one_line_each(case: Case, tmp: Path, code: int, out: str, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err + out
    assert len(lines) == len(case.expect), err
    for line, expected in zip(lines, case.expect, strict=True):
        assert expected.replace("{tmp}", str(tmp)) in line
    for secret in (BAD_DISCORD, BAD_TELEGRAM, BAD_TELEGRAM.partition(":")[2]):
        assert secret not in err + out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_misconfiguration_is_one_line_each_and_exit_2(
    case: Case, tmp_path: Path, platforms: Platforms
) -> None:
    _write_files(tmp_path, case)
    code, out, err = await run_turbobot(tmp_path, _env(tmp_path, platforms, case.env))
    _assert_one_line_each(case, tmp_path, code, out, err)


UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"  # never dialled: the checks stop the start first
TOKEN_CASES = ("discord token", "telegram token", "everything at once")
WORKER_CASES = [
    *(
        Case(c.name, {"REDIS_URL": UNREACHABLE_REDIS, **c.env}, c.expect, c.files)
        for c in CASES
        if c.name not in TOKEN_CASES
    ),
    Case("no redis url", {}, ("REDIS_URL: turbobot worker needs the bot's Redis",)),
    Case(
        "no redis url and a bad setting",
        {"TURBOBOT_LOG_LEVEL": "loud"},
        ("TURBOBOT_LOG_LEVEL=loud", "REDIS_URL: turbobot worker needs the bot's Redis"),
    ),
    Case(
        "tokens are not the worker's business",
        {"REDIS_URL": UNREACHABLE_REDIS, "DISCORD_TOKEN": BAD_DISCORD, "DISCORD_GUILD_IDS": "x"},
        ("DISCORD_GUILD_IDS=x",),
    ),
    Case(
        "data dir .env read by the worker too",
        {},
        ("TURBOBOT_MEMORY_PROFILE=fast", "REDIS_URL: turbobot worker needs the bot's Redis"),
        files={"data/.env": "TURBOBOT_MEMORY_PROFILE=fast\n"},
    ),
]


@pytest.mark.parametrize("case", WORKER_CASES, ids=[c.name for c in WORKER_CASES])
async def test_worker_misconfiguration_is_one_line_each_and_exit_2(
    case: Case, tmp_path: Path, platforms: Platforms
) -> None:
    """``turbobot worker`` finds and checks its settings as ``turbobot run`` does."""
    _write_files(tmp_path, case)
    env = _env(tmp_path, platforms, case.env)
    code, out, err = await run_turbobot(tmp_path, env, "worker")
    _assert_one_line_each(case, tmp_path, code, out, err)
