"""The wheel is the product a container build installs: build it, install it somewhere else and
run ``turbobot run`` from there with a piped ``/imagine`` on the tiny model.

The build is offline (``--no-build-isolation`` uses this venv's setuptools) and the dependencies
come from this venv: the interpreter runs with ``-S`` (no site, so not the editable install of
the work tree) and ``PYTHONPATH`` = the install target, then this venv's site-packages.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot", "engine", "adapters", "migrations", "pyproject.toml", "README.md")


def build_wheel(tmp_path: Path) -> Path:
    """``pip wheel`` of a copy of the sources (a build in place would litter the work tree)."""
    src = tmp_path / "src"
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(origin, src / name)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    (wheel,) = out.glob("turbobot-*.whl")
    return wheel


def test_wheel_carries_the_migrations_and_runs(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    shipped = ROOT.joinpath("migrations").glob("*.sql")
    assert {f"migrations/{p.name}" for p in shipped} <= set(names)
    assert not any(name.startswith("tests/") for name in names)

    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    work = tmp_path / "elsewhere"  # not the repository: nothing may come from the work tree
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_"))
    }
    env |= {
        "PYTHONPATH": os.pathsep.join([str(target), *site.getsitepackages()]),
        "TURBOBOT_DATA_DIR": str(work / "data"),
        "TURBOBOT_METRICS_PORT": "0",
        "TURBOBOT_TINY_SIDE": "64",
        "HF_HUB_OFFLINE": "1",
    }
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import bot, migrations; print(bot.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(target))
    proc = subprocess.run(
        [sys.executable, "-S", str(target / "bin" / "turbobot"), "run"],
        cwd=work,
        env=env,
        input="/imagine a lighthouse --seed 3\n",
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    done = [line for line in proc.stdout.splitlines() if line.startswith("#1 done")]
    assert len(done) == 1, proc.stdout + proc.stderr
    image = Path(done[0].rsplit(": ", 1)[1])
    assert image.read_bytes()[:2] == b"\xff\xd8"
    assert "Traceback" not in proc.stderr
