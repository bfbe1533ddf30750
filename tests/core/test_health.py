"""/healthz and /readyz from the process status, and the systemd readiness datagram."""

from __future__ import annotations

import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.domain import Platform
from bot.health import Status, notify_systemd
from bot.metrics import Metrics, serve_metrics
from tests.core.test_lifecycle import free_port


@dataclass
class FakePlatform:
    """Only what the health report reads of a ChatAdapter."""

    platform: Platform
    connected: bool = True


def running_status(*platforms: FakePlatform) -> tuple[Status, Metrics]:
    metrics = Metrics()
    status = Status(metrics)
    status.attach_engine(lambda: True, None)
    status.attach_platforms(list(platforms))  # type: ignore[arg-type]
    status.stage = "running"
    return status, metrics


def test_a_disconnected_platform_makes_the_bot_unhealthy() -> None:
    discord, telegram = FakePlatform(Platform.DISCORD), FakePlatform(Platform.TELEGRAM)
    status, metrics = running_status(discord, telegram)
    metrics.queue_depth.set(4)
    assert status.healthy()
    telegram.connected = False
    assert not status.healthy()
    assert status.details() == {
        "stage": "running",
        "engine": True,
        "platforms": {"discord": True, "telegram": False},
        "queue_depth": 4,
        "workers": {"embedded": 1, "busy": 0},
    }


def test_not_healthy_before_running_nor_with_a_stopped_engine() -> None:
    status, _ = running_status(FakePlatform(Platform.DISCORD))
    status.stage = "loading the model"
    assert not status.healthy()
    assert not status.ready
    status.stage = "running"
    status.attach_engine(lambda: False, lambda: {"ready_workers": 0, "workers": []})
    assert not status.healthy()
    assert status.details()["workers"] == {"ready_workers": 0, "workers": []}


async def test_endpoints_follow_the_status() -> None:
    telegram = FakePlatform(Platform.TELEGRAM)
    status, metrics = running_status(telegram)
    status.stage = "loading the model"
    async with (
        serve_metrics(
            metrics,
            "127.0.0.1",
            free_port(),
            status.healthy,
            details=status.details,
            ready=lambda: status.ready,
            pool=status.pool,
        ) as port,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{port}"
        async with http.get(f"{base}/readyz") as resp:
            assert resp.status == 503
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 503
            assert (await resp.json())["stage"] == "loading the model"
        status.stage = "running"
        async with http.get(f"{base}/readyz") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 200
        telegram.connected = False
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 503
            assert (await resp.json())["platforms"] == {"telegram": False}
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200


def test_notify_systemd_sends_one_datagram(monkeypatch: pytest.MonkeyPatch) -> None:
    # AF_UNIX paths are limited to ~107 bytes: a short temporary folder, not tmp_path.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(path))
            monkeypatch.setenv("NOTIFY_SOCKET", str(path))
            assert notify_systemd("READY=1")
            assert receiver.recv(64) == b"READY=1"


def test_notify_systemd_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_systemd("READY=1") is False
