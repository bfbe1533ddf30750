"""Logs never carry tokens; /healthz and /metrics answer."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from bot.lifecycle import REDACTED, Redactor, setup_logging
from bot.metrics import Metrics, serve_metrics

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_redactor_hides_known_secrets_and_token_shapes() -> None:
    redact = Redactor(["my-own-secret-value"])
    line = (
        f"POST https://api.telegram.org/bot{TELEGRAM_TOKEN}/getMe "
        f"auth={DISCORD_TOKEN} other=my-own-secret-value ok"
    )
    cleaned = redact(line)
    for secret in (TELEGRAM_TOKEN, DISCORD_TOKEN, "my-own-secret-value"):
        assert secret not in cleaned
    assert cleaned.count(REDACTED) == 3
    assert cleaned.endswith(" ok")


def fail_with_token() -> None:
    raise RuntimeError(f"failed for {TELEGRAM_TOKEN}")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_carry_no_token(fmt: str, restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("INFO", fmt, secrets=["sekrit-webhook"], stream=stream)
    log = logging.getLogger("turbobot.test")
    log.info("calling %s with sekrit-webhook", f"https://x/bot{TELEGRAM_TOKEN}/sendPhoto")
    try:
        fail_with_token()
    except RuntimeError:
        log.exception("boom")
    logging.getLogger("httpx").info("HTTP Request: POST https://x/bot%s", TELEGRAM_TOKEN)
    output = stream.getvalue()
    assert TELEGRAM_TOKEN not in output
    assert "sekrit-webhook" not in output
    assert "boom" in output
    assert "calling" in output
    assert "HTTP Request" not in output  # httpx is held at WARNING
    if fmt == "json":
        entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert [e["message"] for e in entries][1] == "boom"
        assert "exc" in entries[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_and_health_endpoints() -> None:
    metrics = Metrics()
    metrics.queue_depth.set(3)
    metrics.jobs.labels(state="posted").inc()
    healthy = {"ok": True}
    async with (
        serve_metrics(metrics, "127.0.0.1", free_port(), lambda: healthy["ok"]) as port,
        aiohttp.ClientSession() as http,
    ):
        assert port is not None
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            body = await resp.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        healthy["ok"] = False
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 503
    assert "turbobot_queue_depth 3.0" in body
    assert 'turbobot_jobs_total{state="posted"} 1.0' in body
    assert "turbobot_job_latency_seconds_bucket" in body


async def test_metrics_port_zero_is_disabled() -> None:
    async with serve_metrics(Metrics(), "127.0.0.1", 0) as port:
        assert port is None


async def test_pool_details_on_healthz_and_metrics() -> None:
    """With a worker pool, /healthz lists the workers and /metrics has per-worker gauges."""
    pool = {
        "redis_ok": True,
        "in_flight": 1,
        "ready_workers": 1,
        "workers": [
            {
                "id": "w1",
                "host": "gpu-a",
                "gpu": "NVIDIA H100",
                "state": "ready",
                "busy": True,
                "jobs_done": 7,
                "failures": 0,
            },
            {
                "id": "w2",
                "host": "gpu-b",
                "gpu": "RTX 4090",
                "state": "resting",
                "busy": False,
                "jobs_done": 2,
                "failures": 3,
            },
        ],
    }
    async with (
        serve_metrics(Metrics(), "127.0.0.1", free_port(), details=lambda: pool) as port,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            health = await resp.json()
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            body = await resp.text()
    assert health["ok"] is True
    assert [w["gpu"] for w in health["workers"]] == ["NVIDIA H100", "RTX 4090"]
    assert 'turbobot_worker_jobs_done{gpu="NVIDIA H100",worker="w1"} 7.0' in body
    assert 'turbobot_workers{state="resting"} 1.0' in body
    assert 'turbobot_worker_busy{worker="w1"} 1.0' in body
