"""``turbobot download`` as a real process against a fake hub on loopback (``HF_ENDPOINT``)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

import pytest

from bot import models
from bot.download import DownloadError, check_disk, check_disks
from tests.e2e.fake_hub import COMMIT, FakeHub, HubFile

pytestmark = pytest.mark.slow

WEIGHTS = "transformer/diffusion_pytorch_model.safetensors"


def hub_repos() -> dict[str, dict[str, HubFile]]:
    rng = random.Random(5)
    return {
        models.BASE_MODEL_REPO: {
            "model_index.json": HubFile(b'{"_class_name": "QwenImagePipeline"}', lfs=False),
            "transformer/config.json": HubFile(b'{"num_layers": 2}', lfs=False),
            # Larger than huggingface_hub's 10 MiB read chunk, so a cut transfer has something
            # on disk to resume from.
            WEIGHTS: HubFile(rng.randbytes(24 << 20), lfs=True),
            "vae/config.json": HubFile(b"{}", lfs=False),
            "README.md": HubFile(b"# not needed", lfs=False),
            "assets/banner.png": HubFile(rng.randbytes(4096), lfs=True),
        },
        models.TURBO_LORA_REPO: {
            models.TURBO_LORA_FILE: HubFile(rng.randbytes(1 << 20), lfs=True),
            "Wuli-Qwen-Image-2512-Turbo-LoRA-4steps-V1.0-bf16.safetensors": HubFile(
                rng.randbytes(4096), lfs=True
            ),
        },
    }


async def run_download(tmp: Path, hub: FakeHub, *args: str) -> tuple[int, str, str]:
    hub_vars = ("HF_", "TURBOBOT_", "TRANSFORMERS_OFFLINE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(hub_vars)}
    env |= {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(tmp / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.entry.cli",
        "download",
        *args,
        cwd=tmp,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_download_into_the_cache_resumes_a_cut_transfer(tmp_path: Path) -> None:
    repos = hub_repos()
    async with FakeHub(repos, cut_once={WEIGHTS}) as hub:
        code, out, err = await run_download(tmp_path, hub)
    assert code == 0, err
    # The cut transfer went on from what had arrived (whole 10 MiB chunks), not from zero.
    half = len(repos[models.BASE_MODEL_REPO][WEIGHTS].data) // 2
    assert [path for path, _ in hub.ranges] == [WEIGHTS]
    resumed_at = int(hub.ranges[0][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= half
    assert hub.gets.count(WEIGHTS) == 2
    snapshot = tmp_path / "hf" / "hub" / "models--Qwen--Qwen-Image-2512" / "snapshots" / COMMIT
    assert (snapshot / WEIGHTS).read_bytes() == repos[models.BASE_MODEL_REPO][WEIGHTS].data
    assert not (snapshot / "README.md").exists()  # only what the pipeline needs
    assert "assets/banner.png" not in hub.gets
    turbo = tmp_path / "loras" / "turbo" / models.TURBO_LORA_FILE
    assert turbo.read_bytes() == repos[models.TURBO_LORA_REPO][models.TURBO_LORA_FILE].data
    assert list(turbo.parent.glob("*.safetensors")) == [turbo]  # one version only
    assert "TURBOBOT_MODEL=Qwen/Qwen-Image-2512" in out.splitlines()
    assert "TURBOBOT_TURBO_LORA can stay unset" in out


async def test_download_to_a_folder_prints_the_paths(tmp_path: Path) -> None:
    async with FakeHub(hub_repos()) as hub:
        code, out, err = await run_download(tmp_path, hub, "--to", str(tmp_path / "w"))
        assert code == 0, err
        gets = len(hub.gets)
        # Run again: everything is there and verified, nothing is fetched twice.
        code, again, err = await run_download(tmp_path, hub, "--to", str(tmp_path / "w"))
        assert code == 0, err
        assert len(hub.gets) == gets
    folder = (tmp_path / "w" / "Qwen-Image-2512").resolve()
    assert f"TURBOBOT_MODEL={folder}" in out.splitlines()
    turbo = (tmp_path / "w" / models.TURBO_LORA_FILE).resolve()
    assert f"TURBOBOT_TURBO_LORA={turbo}" in out.splitlines()
    assert (folder / "model_index.json").is_file()
    assert again == out


async def test_a_corrupt_file_is_caught_by_its_hash(tmp_path: Path) -> None:
    async with FakeHub(hub_repos(), corrupt={models.TURBO_LORA_FILE}) as hub:
        code, out, err = await run_download(tmp_path, hub, "--turbo")
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("turbobot download:")]
    assert lines == [
        f"turbobot download: {models.TURBO_LORA_REPO}: {models.TURBO_LORA_FILE} (sha256 differs);"
        " delete those files and run again"
    ]
    assert "Traceback" not in err
    assert "TURBOBOT_TURBO_LORA" not in out


async def test_unknown_repository_is_one_line(tmp_path: Path) -> None:
    async with FakeHub(hub_repos()) as hub:
        code, _, err = await run_download(tmp_path, hub, "--model", "--model-repo", "no/such")
    assert code == 1
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("turbobot download: RepositoryNotFoundError")


def test_the_disk_check_refuses_before_downloading(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"2\.0 GiB to download into .* only 1\.5 GiB"):
        check_disk(2 << 30, tmp_path, free=lambda _: 3 << 29)
    check_disk(1 << 20, tmp_path, free=lambda _: 3 << 30)


def test_items_on_one_disk_are_added_up(tmp_path: Path) -> None:
    one_gib = 1 << 30
    (tmp_path / "a").mkdir()
    needs = [(tmp_path / "a", one_gib), (tmp_path / "b" / "not-yet", one_gib)]
    # Each fits alone next to the margin; together they do not.
    with pytest.raises(DownloadError, match=r"2\.0 GiB to download"):
        check_disks(needs, free=lambda _: 5 * one_gib // 2)
    check_disks(needs, free=lambda _: 4 * one_gib)
