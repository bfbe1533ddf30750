"""Webhook mode end to end: the real adapter and python-telegram-bot's own webhook server on
loopback, a real core and SQLite; the fake Bot API records setWebhook and plays Telegram by
POSTing updates to the bot's port."""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import ALLOWED_UPDATES, TelegramStartError
from adapters.telegram.webhook import WebhookSettingsError, webhook_from
from bot.config import Settings
from bot.domain import Platform, Requester
from bot.service import open_core
from bot.testing.executor import FakeExecutor
from tests.fakes import FakeClock
from tests.telegram.conftest import TOKEN, make_settings, running_bot
from tests.telegram.fake_botapi import FakeBotApi, command_message, user

SECRET = "wh-secret_never-logged-0123456789"
PUBLIC_URL = "https://bot.example.test/telegram/hook"
ADA = user(42)


@pytest.fixture
def port() -> int:
    """A loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_settings(api: FakeBotApi, data_dir: Path, port: int, **extra: object) -> Settings:
    values: dict[str, object] = {
        "TELEGRAM_WEBHOOK_URL": PUBLIC_URL,
        "TELEGRAM_WEBHOOK_SECRET": SecretStr(SECRET),
        "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": port,
        **extra,
    }
    return make_settings(data_dir, api.base_url, **values)


def local_url(port: int) -> str:
    """Where the reverse proxy would forward the public URL: same path, the bot's port."""
    return f"http://127.0.0.1:{port}/telegram/hook"


def registered_url(api: FakeBotApi) -> str | None:
    """The webhook URL the fake Bot API holds (None: no webhook, the bot must poll)."""
    return None if api.webhook is None else str(api.webhook["url"])


def logged(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in caplog.records]
    lines += [r.exc_text for r in caplog.records if r.exc_text]
    return "\n".join(lines)


async def test_an_update_posted_with_the_secret_gets_its_photo(
    api: FakeBotApi, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = webhook_settings(api, tmp_path, port)
    async with running_bot(api, tmp_path, settings=settings) as bot:
        # The bot told Telegram where to call and with which secret, and does not poll.
        assert api.webhook is not None
        assert api.webhook["url"] == PUBLIC_URL
        assert api.webhook["secret_token"] == SECRET
        assert api.webhook["allowed_updates"] == ALLOWED_UPDATES
        assert api.webhook.get("drop_pending_updates") in (None, "False", "false")
        assert api.polls == 0

        update = command_message("/imagine a cat on a roof --seed 7", from_user=ADA)
        assert await api.deliver(local_url(port), update) == 200

        photo = (await api.wait_for("sendPhoto"))[0]
        await bot.core.wait_until_idle("telegram:42")
    assert photo.params["chat_id"] == "42"
    assert photo.params["caption"].startswith("a cat on a roof\n")
    assert photo.files["photo"].data[:2] == b"\xff\xd8"
    assert len(bot.executor.calls) == 1
    # PTB logs setWebhook's parameters at DEBUG: the secret is there, redacted; the token
    # (in every API URL) is nowhere.
    text = logged(caplog)
    assert "<TELEGRAM_WEBHOOK_SECRET>" in text
    assert SECRET not in text
    assert TOKEN not in text
    assert TOKEN.split(":")[1] not in text


async def test_a_wrong_or_missing_secret_is_refused_and_queues_nothing(
    api: FakeBotApi, tmp_path: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = webhook_settings(api, tmp_path, port)
    async with running_bot(api, tmp_path, settings=settings) as bot:
        forged = command_message("/imagine forged", from_user=ADA)
        assert await api.deliver(local_url(port), forged, secret="wrong-secret") == 403
        assert await api.deliver(local_url(port), forged, secret="") == 403
        # Only the real call gets through: one status message, one job, one photo.
        real = command_message("/imagine real", from_user=ADA)
        assert await api.deliver(local_url(port), real) == 200
        photo = (await api.wait_for("sendPhoto"))[0]
        await bot.core.wait_until_idle("telegram:42")
        history = await bot.core.history(Requester(Platform.TELEGRAM, "42", "Ada", "42"))
    assert photo.params["caption"].startswith("real\n")
    assert [job.spec.prompt for job in history] == ["real"]
    assert len(bot.executor.calls) == 1
    assert len(api.calls_of("sendMessage")) == 1
    text = logged(caplog)
    assert SECRET not in text
    assert TOKEN not in text


async def test_shutdown_stops_the_server_and_keeps_the_webhook(
    api: FakeBotApi, tmp_path: Path, port: int
) -> None:
    settings = webhook_settings(api, tmp_path, port)
    async with running_bot(api, tmp_path, settings=settings):
        pass
    # Telegram keeps (and retries) updates for a registered webhook while the bot is down.
    assert registered_url(api) == PUBLIC_URL
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.deliver(local_url(port), command_message("/imagine late", from_user=ADA))
    # Back to long polling: the webhook is removed, or Telegram would refuse getUpdates.
    async with running_bot(api, tmp_path):
        assert registered_url(api) is None
        assert api.calls_of("deleteWebhook")


async def test_a_webhook_without_a_secret_refuses_to_start(
    api: FakeBotApi, tmp_path: Path, port: int
) -> None:
    settings = make_settings(
        tmp_path, api.base_url, TELEGRAM_WEBHOOK_URL=PUBLIC_URL, TELEGRAM_WEBHOOK_PORT=port
    )
    async with open_core(settings, FakeExecutor(), FakeClock()) as core:
        with pytest.raises(WebhookSettingsError) as caught:
            TelegramAdapter(core, settings)
    message = str(caught.value)
    assert "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not" in message
    assert "long polling" in message
    assert api.calls == []  # refused before anything connected


# Tornado's bind_sockets does not close its socket when bind() fails; collected below.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
async def test_a_taken_port_fails_start_with_a_clear_message(
    api: FakeBotApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = webhook_settings(api, tmp_path, int(taken.getsockname()[1]))
        async with open_core(settings, FakeExecutor(), FakeClock()) as core:
            adapter = TelegramAdapter(core, settings)
            with pytest.raises(TelegramStartError, match="cannot listen for the webhook"):
                await adapter.start()
            await adapter.aclose()  # idempotent after a failed start
    gc.collect()  # finalise tornado's leaked socket under this test's warning filter
    assert SECRET not in logged(caplog)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"TELEGRAM_WEBHOOK_URL": "http://bot.example.test/hook"}, "https://"),
        ({"TELEGRAM_WEBHOOK_URL": "https:///hook"}, "https://"),
        ({"TELEGRAM_WEBHOOK_URL": f"https://bot.example.test/{TOKEN}"}, "bot token"),
        (
            {"TELEGRAM_WEBHOOK_URL": f"https://bot.example.test/{TOKEN.split(':')[1]}"},
            "bot token",
        ),
        ({"TELEGRAM_WEBHOOK_SECRET": SecretStr("has spaces")}, "A-Z a-z 0-9 _ -"),
        ({"TELEGRAM_WEBHOOK_SECRET": SecretStr("x" * 257)}, "1-256"),
    ],
)
def test_webhook_settings_that_cannot_work_are_refused(
    tmp_path: Path, extra: dict[str, object], problem: str
) -> None:
    values: dict[str, object] = {
        "TELEGRAM_WEBHOOK_URL": PUBLIC_URL,
        "TELEGRAM_WEBHOOK_SECRET": SecretStr(SECRET),
        **extra,
    }
    settings = make_settings(tmp_path, "http://127.0.0.1:1/bot", **values)
    with pytest.raises(WebhookSettingsError, match=problem) as caught:
        webhook_from(settings)
    assert TOKEN not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_webhook_listens_on_the_public_path_and_hides_its_secret(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "http://127.0.0.1:1/bot",
        TELEGRAM_WEBHOOK_URL=PUBLIC_URL + "?from=telegram",
        TELEGRAM_WEBHOOK_SECRET=SecretStr(SECRET),
        TELEGRAM_WEBHOOK_LISTEN="0.0.0.0",  # noqa: S104 - a container's proxy may be elsewhere
        TELEGRAM_WEBHOOK_PORT=9000,
    )
    hook = webhook_from(settings)
    assert hook is not None
    assert (hook.url_path, hook.listen, hook.port) == ("/telegram/hook", "0.0.0.0", 9000)  # noqa: S104
    assert SECRET not in repr(hook)
    root = make_settings(
        tmp_path,
        "http://127.0.0.1:1/bot",
        TELEGRAM_WEBHOOK_URL="https://bot.example.test",
        TELEGRAM_WEBHOOK_SECRET=SecretStr(SECRET),
    )
    root_hook = webhook_from(root)
    assert root_hook is not None
    assert root_hook.url_path == "/"
    assert webhook_from(make_settings(tmp_path, "http://127.0.0.1:1/bot")) is None
