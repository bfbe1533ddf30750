"""A real ``redis-server`` on a random loopback port, and real ``turbobot worker`` processes.

Tests skip (with the reason) when the ``redis-server`` binary is absent on a developer's machine;
in CI (``CI=true``, as GitHub Actions and most CI systems set it) a missing binary fails the run
instead, so the scale-out tests can never be skipped silently there. CI installs Debian's
``redis-server``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from bot.config import Settings
from engine.pool.wire import WORKER_PREFIX

REDIS_BIN = shutil.which("redis-server")
HEARTBEAT_S = 0.5
TINY_SIDE = 256  # big enough that a job outlives the kill that a test aims at it (~0.5 s)
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` without persistence: a restart loses everything it held."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_BIN is not None
        args = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.client().ping()  # the client retries below until the server answers

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(10)
            self._proc = None

    def client(self) -> redis.Redis:
        deadline = time.monotonic() + 10
        while True:
            c = redis.Redis(port=self.port, socket_connect_timeout=1)
            try:
                c.ping()
            except redis.ConnectionError:
                c.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return c


def require_redis(binary: str | None, env: Mapping[str, str]) -> None:
    """Skip without ``redis-server``, except in CI, where that fails the run."""
    if binary is not None:
        return
    reason = "redis-server not installed (apt-get install -y redis-server)"
    if env.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}: CI must run the scale-out tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis(REDIS_BIN, os.environ)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def pool_settings(data_dir: Path, url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "REDIS_URL": url,
        "TURBOBOT_DATA_DIR": data_dir,
        "TURBOBOT_MODEL": "tiny",
        "TURBOBOT_TINY_SIDE": TINY_SIDE,
        "TURBOBOT_METRICS_PORT": 0,
        "TURBOBOT_RATE_PER_MINUTE": 600,
        "TURBOBOT_RATE_BURST": 100,
        "TURBOBOT_MAX_PENDING_PER_USER": 100,
        "TURBOBOT_WORKER_HEARTBEAT_S": HEARTBEAT_S,
        "TURBOBOT_WORKER_POLL_S": 0.02,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _advertised(client: redis.Redis) -> set[str]:
    return {k.decode() for k in cast("list[bytes]", client.keys(WORKER_PREFIX + "*"))}


class WorkerProcs:
    """``turbobot worker`` processes on the tiny engine, by name; killed ones can be respawned."""

    def __init__(self, server: RedisServer, data_dir: Path, logs: Path) -> None:
        self.server = server
        self.data_dir = data_dir
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._spawned = 0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env |= {
            "REDIS_URL": self.server.url,
            "TURBOBOT_MODEL": "tiny",
            "TURBOBOT_TINY_SIDE": str(TINY_SIDE),
            "TURBOBOT_DATA_DIR": str(self.data_dir),
            "TURBOBOT_WORKER_HEARTBEAT_S": str(HEARTBEAT_S),
            "TURBOBOT_WORKER_JOB_TIMEOUT_S": "30",
            "TURBOBOT_WORKER_POLL_S": "0.02",
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",  # three workers share two cores
            "PYTHONPATH": str(REPO),
        }
        return env

    def spawn(self) -> str:
        self._spawned += 1
        name = f"w{self._spawned}"
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "bot.entry.cli", "worker", "--name", name],
                env=self._env(),
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return name

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def ensure(self, count: int, timeout_s: float = 60) -> None:
        """Spawn until ``count`` run, and wait until each advertises itself in Redis."""
        for _ in range(count - len(self.alive())):
            self.spawn()
        client = self.server.client()
        deadline = time.monotonic() + timeout_s
        want = {WORKER_PREFIX + n for n in self.alive()}
        while not want <= {
            k.decode() for k in cast("list[bytes]", client.keys(WORKER_PREFIX + "*"))
        }:
            dead = [n for n, p in self.procs.items() if p.poll() not in (None, -9)]
            assert not dead, f"worker(s) {dead} exited; see {self.logs}"
            assert time.monotonic() < deadline, f"workers not ready; see {self.logs}"
            time.sleep(0.1)
        client.close()

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the tiny model and its demo styles once, so workers only load them."""
    from engine.loading import load_engine

    data_dir = tmp_path_factory.mktemp("tiny-data")
    load_engine(Settings(_env_file=None, TURBOBOT_MODEL="tiny", TURBOBOT_DATA_DIR=data_dir))  # type: ignore[call-arg]
    return data_dir


@pytest.fixture(scope="module")
def workers(
    redis_server: RedisServer, tiny_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcs]:
    procs = WorkerProcs(redis_server, tiny_build, tmp_path_factory.mktemp("worker-logs"))
    try:
        procs.ensure(3)
        yield procs
    finally:
        procs.stop_all()
