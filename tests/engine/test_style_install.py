"""``turbobot styles add``'s checks: the scanner's rules, applied before anything is written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engine.pipeline import Engine
from engine.style_install import NewStyle, install_style
from engine.styles import LoraRefused, scan_styles
from engine.tiny import TINY_DEMO_STYLES


def demo_file(tiny_data_dir: Path) -> Path:
    name = next(iter(TINY_DEMO_STYLES))
    return tiny_data_dir / "tiny" / "loras" / name / f"{name}.safetensors"


def test_installed_style_is_found_by_the_scanner(
    engine: Engine, tiny_data_dir: Path, tmp_path: Path
) -> None:
    new = NewStyle("sumi", strength=0.7, prompt_suffix='brush "sumi-e"', trigger_words=("sm",))
    style = install_style(tmp_path, demo_file(tiny_data_dir), new, engine.styles.linears)
    assert style.info.strength == 0.7
    assert style.apply_to("a pond") == 'sm, a pond, brush "sumi-e"'
    found, refused = scan_styles(tmp_path, engine.styles.linears)
    assert list(found) == ["sumi"]
    assert refused == {}
    manifest = tomllib.loads((tmp_path / "sumi" / "style.toml").read_text())
    assert manifest["name_en"] == "sumi"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging left


@pytest.mark.parametrize(
    ("name", "why"),
    [("../up", "is not allowed"), ("Big", "is not allowed"), ("turbo", "Turbo LoRA's folder")],
)
def test_bad_names_are_refused(
    engine: Engine, tiny_data_dir: Path, tmp_path: Path, name: str, why: str
) -> None:
    with pytest.raises(LoraRefused, match=why):
        install_style(tmp_path, demo_file(tiny_data_dir), NewStyle(name), engine.styles.linears)
    assert list(tmp_path.iterdir()) == []


def test_pickles_strength_and_existing_names_are_refused(
    engine: Engine, tiny_data_dir: Path, tmp_path: Path
) -> None:
    pickle = tmp_path / "evil.safetensors"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a pickle renamed to .safetensors
    loras = tmp_path / "loras"
    linears = engine.styles.linears
    with pytest.raises(LoraRefused, match="not a safetensors file"):
        install_style(loras, pickle, NewStyle("evil"), linears)
    with pytest.raises(LoraRefused, match=r"outside 0\.\.2"):
        install_style(loras, demo_file(tiny_data_dir), NewStyle("x", strength=3), linears)
    install_style(loras, demo_file(tiny_data_dir), NewStyle("ink2"), linears)
    with pytest.raises(LoraRefused, match="already exists"):
        install_style(loras, demo_file(tiny_data_dir), NewStyle("ink2"), linears)
    assert sorted(p.name for p in loras.iterdir()) == ["ink2"]


def test_a_lora_for_another_model_is_refused(engine: Engine, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    other = tmp_path / "sdxl.safetensors"
    save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 320)}, str(other))
    with pytest.raises(LoraRefused):
        install_style(tmp_path / "loras", other, NewStyle("sdxl"), engine.styles.linears)
    assert not (tmp_path / "loras" / "sdxl").exists()
