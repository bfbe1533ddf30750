"""``scripts/gpu-check``: the dry run on ``meta``, the offline wheel selection, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packaging.tags import Tag

from benchmarks import gpu_check
from benchmarks.gpu_check import NEEDED, select_wheels, wheel_requirements
from engine.pipeline import Engine

PY312 = [Tag("cp312", "cp312", "manylinux_2_17_x86_64"), Tag("py3", "none", "any")]


def test_dry_run_walks_every_profile_on_meta(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "transformer 20.43 B parameters" in out
    for run in gpu_check.PLAN:
        assert f"- {run.name}:" in out
    assert (
        "low (24 GiB cap): create {'transformer': 'cpu', 'text_encoder': 'cpu', 'vae': 'cuda'}"
        in out
    )
    assert out.count("1024, 1024, 4") == len(gpu_check.PLAN)
    assert "every profile fits its cap" in out


def _wheels(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = [folder / n for n in names]
    for p in paths:
        p.write_bytes(b"")
    return paths


def _all_installed() -> dict[str, str]:
    """A box that has every needed distribution at a fitting version."""
    versions = {"diffusers": "0.42.1", "pydantic-core": "2.50.5"}
    for name, spec in NEEDED:
        versions.setdefault(name, spec.lstrip("=<>~!"))
    return versions


def test_nothing_is_installed_when_the_box_has_everything(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path, "diffusers-0.42.1-py3-none-any.whl")
    assert select_wheels(_all_installed(), wheels, PY312) == ([], [])


def test_missing_or_too_old_distributions_come_from_the_folder(tmp_path: Path) -> None:
    wheels = _wheels(
        tmp_path,
        "diffusers-0.42.1-py3-none-any.whl",
        "diffusers-0.35.0-py3-none-any.whl",
        "peft-0.21.2-py3-none-any.whl",
        "huggingface_hub-2.4.0-py3-none-any.whl",
    )
    box = _all_installed()
    del box["diffusers"]  # a typical CUDA box has no diffusers
    box["huggingface-hub"] = "1.10.0"  # too old for diffusers 0.42.1
    chosen, unresolved = select_wheels(box, wheels, PY312)
    assert unresolved == []
    assert sorted(p.name for p in chosen) == [
        "diffusers-0.42.1-py3-none-any.whl",  # the pinned one, not the older file
        "huggingface_hub-2.4.0-py3-none-any.whl",
    ]


def test_pydantic_brings_the_core_built_for_this_python(tmp_path: Path) -> None:
    wheels = _wheels(
        tmp_path,
        "pydantic-2.14.4-py3-none-any.whl",
        "pydantic_core-2.50.5-cp311-cp311-manylinux_2_17_x86_64.whl",
        "pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.whl",
    )
    box = _all_installed()
    del box["pydantic"], box["pydantic-core"]
    chosen, unresolved = select_wheels(box, wheels, PY312)
    assert unresolved == []
    assert sorted(p.name for p in chosen) == [
        "pydantic-2.14.4-py3-none-any.whl",
        "pydantic_core-2.50.5-cp312-cp312-manylinux_2_17_x86_64.whl",
    ]


def test_what_the_folder_cannot_cover_is_named(tmp_path: Path) -> None:
    box = _all_installed()
    del box["diffusers"], box["peft"]
    wheels = _wheels(tmp_path, "peft-0.21.2-cp311-cp311-manylinux_2_17_x86_64.whl")
    chosen, unresolved = select_wheels(box, wheels, PY312)
    assert chosen == []  # the only peft wheel is for another Python
    assert unresolved == ["diffusers==0.42.1", "peft>=0.17"]


def test_box_must_bring_cuda_torch_and_transformers() -> None:
    box = _all_installed() | {"torch": "2.8.0+cu128", "transformers": "5.17.0"}
    problems = gpu_check.box_problems(box)
    assert problems[0] == "torch>=2.9 is needed on this machine (found 2.8.0+cu128)"
    assert not any(p.startswith("transformers") for p in problems)


def test_prepare_pins_what_this_checkout_runs_and_splits_binaries() -> None:
    versions = {gpu_check.canonical(n): "1.0" for n, _ in NEEDED} | {"pydantic-core": "2.50.5"}
    pure, binary = wheel_requirements(versions)
    assert "diffusers==1.0" in pure
    assert sorted(binary) == [
        "charset-normalizer==1.0",
        "pydantic-core==2.50.5",
        "safetensors==1.0",
    ]
    assert not any(p.startswith(("torch", "transformers")) for p in pure + binary)


def _result(name: str, cap: float | None, reserved: float) -> dict[str, Any]:
    image = {
        "wall_s": 1.0,
        "text_encode_s": 0.1,
        "denoise_s": 0.8,
        "step_s": [0.2] * 4,
        "decode_s": 0.1,
        "peak_allocated_gib": reserved - 1,
        "peak_reserved_gib": reserved,
    }
    whats = ["cold", *(f"warm {i}" for i in range(1, 6)), "CFG 4"]
    return {
        "run": name,
        "cap_gib": cap,
        "load_s": 9.0,
        "images": [image | {"what": w} for w in whats],
        "host_peak_rss_gib": 20.0,
    }


def test_report_fails_a_run_over_its_cap_or_that_did_not_finish() -> None:
    ok = _result("full", None, 60.0)
    over = _result("low (24 GiB cap)", 24.0, 24.5)
    body = gpu_check.report([ok, over, {"run": "full + compile", "error": "failed"}], "a GPU")
    assert "| full | 9.0 | 1.00 | 1.00 (0.10 / 0.80 / 0.10) | - | 1.00 | 59.0 / 60.0 |" in body
    assert body.endswith("Failed or over the cap: low (24 GiB cap), full + compile.")
    assert not gpu_check._failed(ok)
    assert gpu_check._failed(over)


def test_the_measured_sequence_renders_on_a_loaded_engine(engine: Engine) -> None:
    """What one gpu-check run renders, on the tiny engine with the CPU's stand-in clock."""
    run = gpu_check.Run("cpu", "cpu", None, warm=2)
    images = gpu_check.render_all(engine, run, gpu_check.HostClock())
    a, b = sorted(engine.styles.styles)[:2]
    assert [i["what"] for i in images] == [
        "cold",
        "warm 1",
        "warm 2",
        f"style {a} (first load)",
        f"style {b} (first load)",
        f"style {a} (switch)",
        f"style {b} (switch)",
        "CFG 4",
    ]
    assert all(len(i["step_s"]) == gpu_check.STEPS for i in images)
    result = {"run": "cpu", "cap_gib": None, "load_s": 1.0, "images": images}
    body = gpu_check.report([result | {"host_peak_rss_gib": 5.0}], "this CPU")
    assert "\n| cpu | 1.0 | " in body
    assert body.endswith("Every run passed.")
