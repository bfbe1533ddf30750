"""A real ``turbobot run`` under a systemd-like supervisor: READY=1 once the bot is up (with
/readyz and /healthz saying so), STOPPING=1 at shutdown."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.core.test_lifecycle import free_port

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback http
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ready_then_stopping_with_health_endpoints(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_"))
    }
    env |= {
        "TURBOBOT_DATA_DIR": str(tmp_path / "data"),
        "TURBOBOT_METRICS_PORT": str(port),
        "TURBOBOT_TINY_SIDE": "64",
        "HF_HUB_OFFLINE": "1",
    }
    with tempfile.TemporaryDirectory() as folder:  # AF_UNIX paths must be short
        path = Path(folder) / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(path))
            receiver.settimeout(180)
            env["NOTIFY_SOCKET"] = str(path)
            with subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ) as proc:
                try:
                    assert receiver.recv(64) == b"READY=1"
                    assert get(f"http://127.0.0.1:{port}/readyz") == (200, "ready\n")
                    code, body = get(f"http://127.0.0.1:{port}/healthz")
                    assert code == 200
                    health = json.loads(body)
                    assert health["platforms"] == {"console": True}
                    assert health["engine"] is True
                    assert health["queue_depth"] == 0
                    assert proc.stdin is not None
                    proc.stdin.close()  # end of input: the console asks the bot to stop
                    assert receiver.recv(64) == b"STOPPING=1"
                    proc.wait(timeout=60)
                finally:
                    proc.kill()
                assert proc.stderr is not None
                err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "platforms: console" in err
    assert "configuration: the environment only" in err
    assert "no DISCORD_TOKEN or TELEGRAM_TOKEN found" in err
