"""A real ``turbobot run`` under a systemd-like supervisor (a NOTIFY_SOCKET of our own):

READY=1 once the bot is up, with /readyz and /healthz saying so; ``turbobot styles add`` while
it runs, then SIGHUP (what ``systemctl reload`` sends): RELOADING=1 … READY=1, and the new style
is offered and used without a restart or a model reload; STOPPING=1 at shutdown.
"""

from __future__ import annotations

import json
import os
import signal
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


def bot_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_"))
    }
    return env | {
        "TURBOBOT_DATA_DIR": str(tmp_path / "data"),
        "TURBOBOT_METRICS_PORT": str(port),
        "TURBOBOT_TINY_SIDE": "64",
        "HF_HUB_OFFLINE": "1",
    }


def check_health(port: int) -> None:
    assert get(f"http://127.0.0.1:{port}/readyz") == (200, "ready\n")
    code, body = get(f"http://127.0.0.1:{port}/healthz")
    assert code == 200
    health = json.loads(body)
    assert health["platforms"] == {"console": True}
    assert health["engine"] is True
    assert health["queue_depth"] == 0
    assert health["workers"] == {"embedded": 1, "busy": 0}


def add_style(tmp_path: Path, port: int) -> None:
    """A demo style's file, installed again under a new name by the CLI."""
    source = tmp_path / "data" / "tiny" / "loras" / "ink" / "ink.safetensors"
    added = subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", "styles", "add", str(source), "--name", "sumi",
         "--strength", "0.7", "--suffix", "sumi-e brush", "--trigger", "sumi"],
        cwd=tmp_path,
        env=bot_env(tmp_path, port),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr


def test_ready_reload_and_stopping(tmp_path: Path) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:  # AF_UNIX paths must be short
        path = Path(folder) / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
            systemd.bind(str(path))
            systemd.settimeout(180)
            with subprocess.Popen(
                [sys.executable, "-m", "bot.entry.cli", "run"],
                cwd=tmp_path,
                env=bot_env(tmp_path, port) | {"NOTIFY_SOCKET": str(path)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ) as bot:
                try:
                    assert systemd.recv(64) == b"READY=1"
                    check_health(port)
                    add_style(tmp_path, port)
                    bot.send_signal(signal.SIGHUP)
                    assert systemd.recv(128).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
                    assert systemd.recv(64) == b"READY=1"
                    assert bot.stdin is not None
                    bot.stdin.write("/style\n/imagine a pond --style sumi --seed 1\n")
                    bot.stdin.close()  # end of input: the console asks the bot to stop
                    assert systemd.recv(64) == b"STOPPING=1"
                    bot.wait(timeout=120)
                finally:
                    bot.kill()
                assert bot.stdout is not None
                assert bot.stderr is not None
                out, err = bot.stdout.read(), bot.stderr.read()
    assert bot.returncode == 0, err
    assert "configuration: the environment only" in err
    assert "no DISCORD_TOKEN or TELEGRAM_TOKEN found" in err
    assert "platforms: console" in err
    assert "sumi" in err.split("styles rescanned:", 1)[1].splitlines()[0]
    assert any(line.lstrip("* ").startswith("sumi ") for line in out.splitlines()), out
    assert any(line.startswith("#1 done") for line in out.splitlines()), out
    manifest = (tmp_path / "data" / "tiny" / "loras" / "sumi" / "style.toml").read_text()
    assert 'prompt_suffix = "sumi-e brush"' in manifest
    assert 'trigger_words = ["sumi"]' in manifest
