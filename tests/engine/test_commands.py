"""``turbobot imagine | styles | bench`` through the real CLI parser, on the tiny model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.entry.cli import main
from tests.engine.conftest import TEST_SIDE


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_data_dir: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TURBOBOT_MODEL", "tiny")
    monkeypatch.setenv("TURBOBOT_DATA_DIR", str(tiny_data_dir))  # reuse the session's build
    monkeypatch.setenv("TURBOBOT_TINY_SIDE", str(TEST_SIDE))
    return tmp_path


def test_imagine_writes_the_jpeg_and_reports_the_seed(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = env / "fox.jpg"
    argv = ["imagine", "a fox", "--style", "ink", "--seed", "42", "--steps", "2", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "seed 42" in printed
    assert "decode" in printed
    with Image.open(io.BytesIO(out.read_bytes())) as im:
        assert im.size == (TEST_SIDE, TEST_SIDE)


def test_imagine_without_seed_reports_the_random_one(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["imagine", "a fox", "--steps", "1", "-o", str(env / "a.jpg")]) == 0
    assert "seed " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["imagine", "a fox", "--aspect", "5:4"], "Unknown aspect"),
        (["imagine", "  "], "empty"),
        (["imagine", "a fox", "--steps", "99"], "Steps"),
        (["imagine", "a fox", "--style", "nope"], "Unknown style"),
    ],
)
def test_imagine_bad_input_exits_2_with_a_message(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not (env / "out.jpg").exists()


def test_styles_lists_the_demo_styles(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["styles"]) == 0
    printed = capsys.readouterr().out
    for name in ("watercolor", "ink", "neon", "水墨"):
        assert name in printed


def test_bench_prints_every_stage(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--runs", "1", "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    for stage in (
        "text encode",
        "step 1",
        "step 2",
        "VAE decode",
        "JPEG encode",
        "peak memory",
        "profile cpu",
        "load",
        "cold image",
        "CFG on",
        "style load",
        "style switch",
        "host RSS",
    ):
        assert stage in printed


def test_missing_real_model_says_how_to_get_it(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TURBOBOT_MODEL", str(env / "no-such-model"))
    assert main(["imagine", "a fox", "-o", str(env / "x.jpg")]) == 1
    assert "hf download Qwen/Qwen-Image-2512" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("tensors", "words"),
    [
        (
            {"lora_unet_single_blocks_0_linear1.lora_down.weight": (4, 32)},
            "match no layer of this Qwen-Image transformer",
        ),
        ({"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": (4, 32)}, "lack lora_A"),
    ],
)
def test_a_refused_turbo_lora_is_one_clear_line(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tensors: dict[str, tuple[int, int]],
    words: str,
) -> None:
    import torch
    from safetensors.torch import save_file

    path = env / "turbo.safetensors"
    save_file({k: torch.zeros(*shape) for k, shape in tensors.items()}, str(path))
    monkeypatch.setenv("TURBOBOT_TURBO_LORA", str(path))
    assert main(["imagine", "a fox", "-o", str(env / "x.jpg")]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert lines[0].startswith("error: Turbo LoRA refused: turbo.safetensors: ")
    assert words in lines[0]
    assert "Traceback" not in err


def test_imagine_from_an_image_writes_the_grid_and_each_image(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``turbobot imagine --n 2 --image PATH --strength 0.5`` on the tiny model, through the
    core: the grid in OUTPUT, each image in OUTPUT-k."""
    source = env / "in.png"
    Image.new("RGB", (TEST_SIDE, TEST_SIDE), (30, 90, 200)).save(source)
    argv = ["imagine", "a fox", "--n", "2", "--image", str(source), "--strength", "0.5"]
    assert main([*argv, "--steps", "1", "-o", str(env / "fox.jpg")]) == 0
    printed = capsys.readouterr().out
    assert "image 2 of 2" in printed
    for name in ("fox.jpg", "fox-1.jpg", "fox-2.jpg"):
        with Image.open(env / name) as im:
            assert im.format == "JPEG"
