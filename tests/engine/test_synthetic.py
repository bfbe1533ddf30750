"""TURBOBOT_MODEL=synthetic: the real configs with random weights.

At full size only on ``meta`` (parameter counts equal the real model's); materialised at 2 blocks
(the real widths) it renders an image through the same engine path as real weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from bot.config import Settings
from engine import synthetic
from engine.loading import load_engine, meta_transformer
from engine.pipeline import render
from engine.styles import linear_shapes, read_header
from tests.engine.conftest import no_progress, spec

# The real model (engine-facts: meta build of the shipped configs).
TRANSFORMER_PARAMS = 20_430_401_088
TEXT_ENCODER_PARAMS = 8_292_166_656
VAE_PARAMS = 126_892_531


@pytest.fixture(scope="module")
def full_meta() -> dict[str, Any]:
    return synthetic.build_components()


def test_full_size_on_meta_has_the_real_parameter_counts(full_meta: dict[str, Any]) -> None:
    assert synthetic.parameter_count(full_meta["transformer"]) == TRANSFORMER_PARAMS
    assert synthetic.parameter_count(full_meta["text_encoder"]) == TEXT_ENCODER_PARAMS
    assert synthetic.parameter_count(full_meta["vae"]) == VAE_PARAMS
    devices = {p.device.type for m in full_meta.values() for p in m.parameters()}
    assert devices == {"meta"}  # nothing was allocated


def test_turbo_lora_shape_is_rank_64_over_the_840_block_linears(
    full_meta: dict[str, Any],
) -> None:
    linears = linear_shapes(full_meta["transformer"])
    blocks = synthetic.block_linears(linears)
    assert len(linears) == 846
    assert len(blocks) == 840
    shapes = synthetic.lora_shapes(linears)
    assert len(shapes) == 2 * 840
    # Hand count per block: 8 attention 3072x3072, 4 MLP 3072<->12288, 2 modulation 3072->18432.
    per_block = 8 * (3072 + 3072) + 4 * (3072 + 12288) + 2 * (3072 + 18432)
    assert synthetic.lora_bytes(linears) == 2 * 64 * per_block * 60
    assert 1.05 < synthetic.lora_bytes(linears) / 2**30 < 1.15  # the real file is 1.18 GB


def test_depth_override_cuts_transformer_and_text_encoder() -> None:
    c = synthetic.configs(2)
    assert c.transformer["num_layers"] == 2
    assert c.text_encoder["text_config"]["num_hidden_layers"] == 2
    assert c.text_encoder["vision_config"]["depth"] == 2
    assert c.text_encoder["vision_config"]["fullatt_block_indexes"] == []
    assert c.transformer["joint_attention_dim"] == 3584  # widths stay real
    full = synthetic.configs()
    assert full.text_encoder["text_config"]["num_hidden_layers"] == 28


def test_settings_refuse_a_depth_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TURBOBOT_SYNTHETIC_LAYERS"):
        _settings(tmp_path, layers="61")


def test_materialise_fills_every_parameter_on_the_device_and_keeps_ties() -> None:
    with synthetic.init_meta():
        lin = torch.nn.Linear(64, 32)
        norm = torch.nn.LayerNorm(32)
        model = torch.nn.Sequential(lin, norm, torch.nn.Linear(32, 64))
    model[2].weight = torch.nn.Parameter(lin.weight.t().contiguous())  # a real CPU param
    synthetic.materialise(model, torch.device("cpu"), seed=1)
    assert all(p.device.type == "cpu" and p.dtype == torch.bfloat16 for p in model.parameters())
    assert torch.equal(norm.weight, torch.ones(32, dtype=torch.bfloat16))  # norm gains
    std = float(lin.weight.float().std())
    assert 0.5 / math.sqrt(64) < std < 2.0 / math.sqrt(64)  # scaled by fan-in
    assert not any(p.requires_grad for p in model.parameters())


def _settings(data_dir: Path, *, layers: str = "2") -> Settings:
    env = {
        "TURBOBOT_MODEL": "synthetic",
        "TURBOBOT_DATA_DIR": str(data_dir),
        "TURBOBOT_SYNTHETIC_LAYERS": layers,
        "TURBOBOT_DEVICE": "cpu",
    }
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


@pytest.mark.slow
def test_two_block_synthetic_model_renders_through_the_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Materialised at 2 blocks (real widths) on the CPU, it loads through ``load_engine`` with
    its Turbo LoRA and styles, and renders through the engine's own path."""
    settings = _settings(tmp_path)
    engine = load_engine(settings)
    assert "RANDOM weights" in caplog.text  # says loudly that it draws noise
    pipe = engine.pipe
    assert len(pipe.transformer.transformer_blocks) == 2
    assert pipe.transformer.config.joint_attention_dim == 3584
    assert pipe.transformer.dtype == torch.bfloat16
    assert engine.has_turbo
    assert sorted(engine.styles.styles) == sorted(synthetic.SYNTHETIC_STYLES)
    # The Turbo file on disk is the real shape: rank 64 over both blocks' 14 linears (+ alphas).
    turbo = read_header(tmp_path / "synthetic" / "loras" / "turbo" / "synthetic-turbo.safetensors")
    downs = {k: shape for k, (_dtype, shape) in turbo.items() if k.endswith("lora_down.weight")}
    assert len(downs) == 28
    assert {shape[0] for shape in downs.values()} == {64}
    engine.max_side = 64  # a small image: the test checks the path, not the pixels
    # A style on the Turbo LoRA, with CFG: both adapters and both transformer passes run.
    out = render(engine, spec(style="synthetic-b", steps=2, cfg=4.0), no_progress)
    assert out.image.size == (64, 64)
    assert len(out.timings.step_ms) == 2


def test_meta_transformer_of_synthetic_settings_needs_no_files(tmp_path: Path) -> None:
    t = meta_transformer(_settings(tmp_path, layers="3"))
    assert len(t.transformer_blocks) == 3
    assert not (tmp_path / "synthetic").exists()


def test_the_tiny_tokenizer_fits_the_real_text_encoder() -> None:
    from engine.tiny import TEMPLATE_PREFIX

    pipe = synthetic.build_pipeline(1)  # meta: shapes only
    # the pipeline drops this many hidden states: the template prefix must be exactly that long
    assert len(pipe.tokenizer(TEMPLATE_PREFIX).input_ids) == pipe.prompt_template_encode_start_idx
    assert pipe.prompt_template_encode_start_idx == 34
    ids = pipe.tokenizer("a red fox in the snow, 一只猫 🐱").input_ids
    assert max(ids) < pipe.text_encoder.config.text_config.vocab_size == 152064
    assert {p.device.type for p in pipe.transformer.parameters()} == {"meta"}
