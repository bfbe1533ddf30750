"""The start-up checks as functions: settings, files, tokens, where the .env file is found."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.config import find_env_file
from bot.domain import BASE_STEPS, TURBO_STEPS, Platform
from bot.preflight import check_settings, load_settings, resolve_turbo, verify_tokens
from tests.discord.fake_discord import FakeDiscord
from tests.telegram.fake_botapi import FakeBotApi

TG_TOKEN = "7000001:AAtesttokentesttokentesttokentest"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_empty_values_in_env_file_are_unset(tmp_path: Path) -> None:
    env = write(tmp_path / ".env", "DISCORD_TOKEN=\nTELEGRAM_TOKEN=\nTURBOBOT_CONSOLE=\n")
    settings, problems = load_settings(env)
    assert problems == []
    assert settings.discord_token is None
    assert settings.telegram_token is None
    assert settings.wants_console


def test_every_refused_value_is_one_problem_and_the_rest_still_loads(tmp_path: Path) -> None:
    env = write(
        tmp_path / ".env",
        "DISCORD_GUILD_IDS=1, my-server\nTURBOBOT_MEMORY_PROFILE=fast\n"
        "TURBOBOT_JPEG_QUALITY=300\nTURBOBOT_RATE_BURST=7\n",
    )
    settings, problems = load_settings(env)
    assert [str(p).partition(": ")[0] for p in problems] == [
        "DISCORD_GUILD_IDS=1, my-server",
        "TURBOBOT_MEMORY_PROFILE=fast",
        "TURBOBOT_JPEG_QUALITY=300",
    ]
    assert all("\n" not in str(p) for p in problems)
    assert "'my-server' is not a server id" in problems[0].message
    assert settings.rate_burst == 7  # the good values are kept for the other checks


def test_secret_values_are_never_echoed(tmp_path: Path) -> None:
    env = write(tmp_path / ".env", "TELEGRAM_WEBHOOK_PORT=70000\nREDIS_URL=\n")
    _, problems = load_settings(env, TELEGRAM_WEBHOOK_SECRET=["hunter2-secret"])
    shown = [str(p).partition(": ")[0] for p in problems]
    assert sorted(shown) == ["TELEGRAM_WEBHOOK_PORT=70000", "TELEGRAM_WEBHOOK_SECRET"]
    assert "hunter2" not in " ".join(map(str, problems))


def test_guild_ids_parse() -> None:
    settings, problems = load_settings(None, DISCORD_GUILD_IDS=" 123 , 456,")
    assert problems == []
    assert settings.guild_ids == [123, 456]


def test_operator_ids_parse_and_empty_means_nobody() -> None:
    settings, problems = load_settings(None, TURBOBOT_OPERATOR_IDS=" discord:123 , Telegram:456,")
    assert problems == []
    assert settings.operators == {(Platform.DISCORD, "123"), (Platform.TELEGRAM, "456")}
    assert load_settings(None)[0].operators == frozenset()


@pytest.mark.parametrize("value", ["123", "discord:me", "irc:5", "console:1", "discord:"])
def test_a_bad_operator_id_is_one_clear_problem(value: str) -> None:
    _, problems = load_settings(None, TURBOBOT_OPERATOR_IDS=f"telegram:1,{value}")
    assert [str(p).partition(": ")[0] for p in problems] == [
        f"TURBOBOT_OPERATOR_IDS=telegram:1,{value}"
    ]
    assert "is not an operator" in problems[0].message


def found(environ: dict[str, str]) -> Path | None:
    path = find_env_file(environ)
    return None if path is None else path.resolve()


def test_env_file_order(tmp_path: Path) -> None:
    assert found({}) is None
    data_env = write(tmp_path / "data" / ".env")
    assert found({}) == data_env
    local = write(tmp_path / ".env")
    assert found({}) == local
    explicit = tmp_path / "elsewhere.env"
    assert found({"TURBOBOT_ENV_FILE": str(explicit)}) == explicit  # reported if missing
    other = write(tmp_path / "var" / ".env")
    assert found({"TURBOBOT_DATA_DIR": str(tmp_path / "var")}) == local
    local.unlink()
    assert found({"TURBOBOT_DATA_DIR": str(tmp_path / "var")}) == other


def test_missing_env_file_is_a_problem(tmp_path: Path) -> None:
    _, problems = load_settings(tmp_path / "typo.env")
    assert [p.setting for p in problems] == ["TURBOBOT_ENV_FILE"]


def real_model(tmp_path: Path) -> Path:
    return write(tmp_path / "model" / "model_index.json", "{}").parent


def test_turbo_required_with_a_real_model(tmp_path: Path) -> None:
    settings, _ = load_settings(
        None, TURBOBOT_MODEL=str(real_model(tmp_path)), TURBOBOT_LORA_DIR=str(tmp_path / "loras")
    )
    path, problem = resolve_turbo(settings)
    assert path is None
    assert problem is not None
    assert "turbobot download --turbo" in problem.message
    assert "TURBOBOT_TURBO_LORA=none" in problem.message
    turbo = write(tmp_path / "loras" / "turbo" / "wuli.safetensors")
    assert resolve_turbo(settings) == (turbo, None)
    write(tmp_path / "loras" / "turbo" / "another.safetensors")
    _, problem = resolve_turbo(settings)
    assert problem is not None
    assert "another.safetensors, wuli.safetensors" in problem.message


def test_base_mode_needs_no_turbo_and_widens_the_steps(tmp_path: Path) -> None:
    settings, _ = load_settings(
        None, TURBOBOT_MODEL=str(real_model(tmp_path)), TURBOBOT_TURBO_LORA="None"
    )
    assert resolve_turbo(settings) == (None, None)
    assert check_settings(settings) == []
    assert settings.step_range == BASE_STEPS
    assert BASE_STEPS.default == 30
    assert BASE_STEPS.high == 50
    turbo, _ = load_settings(None)
    assert turbo.step_range == TURBO_STEPS


def test_model_repo_id_not_in_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    settings, _ = load_settings(None, TURBOBOT_MODEL="Qwen/Qwen-Image-2512")
    problems = check_settings(settings)
    assert any(p.setting == "TURBOBOT_MODEL" for p in problems)


def test_webhook_needs_its_secret() -> None:
    settings, _ = load_settings(
        None, TELEGRAM_TOKEN=TG_TOKEN, TELEGRAM_WEBHOOK_URL="https://bot.example.org/hook"
    )
    assert [p.setting for p in check_settings(settings)] == ["TELEGRAM_WEBHOOK_SECRET"]


async def test_tokens_accepted_by_the_fakes() -> None:
    async with FakeDiscord() as discord, FakeBotApi(valid_token=TG_TOKEN) as telegram:
        settings, _ = load_settings(
            None,
            DISCORD_TOKEN="any-token-the-fake-accepts",
            DISCORD_API_BASE_URL=discord.api_base,
            TELEGRAM_TOKEN=TG_TOKEN,
            TELEGRAM_API_BASE_URL=telegram.base_url,
        )
        assert await verify_tokens(settings) == []
        assert [c.method for c in telegram.calls] == ["getMe"]


async def test_both_rejected_tokens_are_reported() -> None:
    async def refuse(_: web.Request) -> web.Response:
        return web.json_response({"message": "401: Unauthorized"}, status=401)

    app = web.Application()
    app.router.add_get("/api/v10/users/@me", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with FakeBotApi(valid_token="1:other") as telegram:
            settings, _ = load_settings(
                None,
                DISCORD_TOKEN="bad",
                DISCORD_API_BASE_URL=f"http://127.0.0.1:{port}/api/v10",
                TELEGRAM_TOKEN=TG_TOKEN,
                TELEGRAM_API_BASE_URL=telegram.base_url,
            )
            problems = await verify_tokens(settings)
    finally:
        await runner.cleanup()
    assert [p.setting for p in problems] == ["DISCORD_TOKEN", "TELEGRAM_TOKEN"]
    assert all(p.fatal for p in problems)
    assert "rejected" in problems[0].message
    assert "rejected" in problems[1].message


async def test_unreachable_platform_is_reported_without_the_token() -> None:
    settings, _ = load_settings(
        None, TELEGRAM_TOKEN=TG_TOKEN, TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot"
    )
    problems = await verify_tokens(settings, timeout_s=5)
    assert len(problems) == 1
    assert "could not reach http://127.0.0.1:9" in problems[0].message
    assert TG_TOKEN.partition(":")[2] not in str(problems[0])
    # Not a configuration mistake: the bot starts and the platform library retries.
    assert not problems[0].fatal
