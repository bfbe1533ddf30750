"""A real ``turbobot run`` (console, tiny model) killed with SIGKILL mid-job, then restarted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.service import DB_NAME

pytestmark = pytest.mark.slow


def start(tmp_path: Path, stdin: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TURBOBOT_DATA_DIR": str(tmp_path / "data"),
        "TURBOBOT_METRICS_PORT": "0",
        "TURBOBOT_TINY_SIDE": "256",
        "TURBOBOT_MODEL": "tiny",
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("DISCORD_TOKEN", "TELEGRAM_TOKEN", "TURBOBOT_CONSOLE"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", "run"],
        cwd=tmp_path,  # no stray .env from the repository
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def job_state(db: Path) -> tuple[str, int] | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT state, attempts FROM jobs WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        return None  # not migrated yet
    return None if row is None else (str(row[0]), int(row[1]))


def wait_for_running(proc: subprocess.Popen[str], db: Path, limit_s: float = 180.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        state = job_state(db)
        if state is not None and state[0] == "running":
            return
        assert state is None or state[0] == "queued", f"job left running unseen: {state}"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.005)  # polling another process, not timing the code under test
    raise AssertionError("the job never started")


def test_sigkill_mid_job_then_restart_delivers_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "data" / DB_NAME
    first = start(tmp_path, subprocess.PIPE)
    assert first.stdin is not None
    first.stdin.write("/imagine a lighthouse in a storm --steps 8 --seed 11\n")
    first.stdin.flush()
    try:
        wait_for_running(first, db)
    finally:
        first.send_signal(signal.SIGKILL)
        out1, err1 = first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert job_state(db) == ("running", 1)

    second = start(tmp_path, subprocess.DEVNULL)  # empty input: finish own jobs, then exit
    out2, err2 = second.communicate(timeout=300)
    assert second.returncode == 0, err2

    done = [line for line in (out1 + out2).splitlines() if line.startswith("#1 done")]
    assert len(done) == 1, out1 + out2
    image = Path(done[0].rsplit(": ", 1)[1])
    assert image.is_file()
    assert image.read_bytes()[:2] == b"\xff\xd8"
    assert job_state(db) == ("posted", 2)
    assert "TINY OFFLINE MODEL" in err1 + err2
