"""Memory profiles as recipes: each one's steps run on the tiny model on CPU (group offload
without streams, fp8 storage), then styles load and render; compile survives style switching."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bot.errors import GenerationFailed
from engine import memory
from engine.executors import LocalExecutor
from engine.loading import load_engine
from engine.pipeline import Engine, render
from engine.style_library import lora_layers
from engine.styles import STYLE_SLOT, TURBO_ADAPTER
from engine.tiny import tiny_lora
from tests.engine.conftest import no_progress, spec, tiny_settings

MANIFEST = 'name_en = "{n}"\nstrength = 1.0\n'


def fresh_engine(data_dir: Path, tmp: Path, **env: str) -> Engine:
    """A private engine (profiles change the pipeline for good) over a private LoRA folder."""
    loras = tmp / "loras"
    return load_engine(tiny_settings(data_dir, TURBOBOT_LORA_DIR=str(loras), **env))


def add_style(engine: Engine, name: str, suffixes: tuple[str, ...], seed: int) -> None:
    linears = engine.styles.linears
    targets = sorted(
        n for n in linears if n.startswith("transformer_blocks.") and n.endswith(suffixes)
    )
    folder = engine.styles.lora_dir / name
    folder.mkdir(parents=True)
    save_file(
        tiny_lora(targets, linears, seed=seed, kohya=True), str(folder / f"{name}.safetensors")
    )
    (folder / "style.toml").write_text(MANIFEST.format(n=name), encoding="utf-8")
    engine.styles.rescan(engine.pipe)


def pixels(engine: Engine, style: str | None) -> bytes:
    return render(engine, spec(style=style), no_progress).image.tobytes()


def lora_dtypes(engine: Engine, adapter: str) -> set[torch.dtype]:
    layers = lora_layers(engine.pipe.transformer, adapter).values()
    return {h[adapter].weight.dtype for layer in layers for h in (layer.lora_A, layer.lora_B)}


@pytest.mark.parametrize("profile", ["full", "balanced", "low"])
def test_each_profile_renders_styles_loaded_before_and_after_it(
    tiny_data_dir: Path, tmp_path: Path, profile: memory.Profile
) -> None:
    engine = fresh_engine(tiny_data_dir, tmp_path)
    add_style(engine, "attn", ("attn.to_q", "attn.to_k", "attn.to_v"), seed=1)
    before = pixels(engine, "attn")
    memory.apply_profile(engine.pipe, profile, device="cpu")
    pipe = engine.pipe
    assert not getattr(pipe, "_all_hooks", None)  # never model CPU offload (re-offloads)
    after = pixels(engine, "attn")
    base = pixels(engine, None)
    # a style whose layers the slot did not cover: the slot is rebuilt after the profile
    add_style(engine, "mlp", ("img_mlp.net.0.proj", "txt_mlp.net.2", "attn.to_q"), seed=2)
    mlp = pixels(engine, "mlp")
    assert len({after, base, mlp}) == 3
    assert lora_dtypes(engine, TURBO_ADAPTER) == {torch.bfloat16}
    assert lora_dtypes(engine, STYLE_SLOT) == {torch.bfloat16}
    if profile == "low":
        to_q = pipe.transformer.transformer_blocks[0].attn.to_q
        assert to_q.base_layer.weight.dtype == torch.float8_e4m3fn
        assert after != before  # fp8 weights: close, not identical
    else:
        assert after == before  # the same bf16 weights and maths on another placement
        assert pipe.transformer.dtype == torch.bfloat16
    if profile != "full":
        assert isinstance(pipe.text_encoder.lm_head, torch.nn.Identity)
        assert pipe.vae.use_tiling


def test_offloaded_profiles_encode_the_prompt_exactly_as_full(
    tiny_data_dir: Path, tmp_path: Path
) -> None:
    engine = fresh_engine(tiny_data_dir, tmp_path)
    want, _ = engine.pipe.encode_prompt("a red fox", device="cpu")
    memory.apply_profile(engine.pipe, "balanced", device="cpu")
    got, _ = engine.pipe.encode_prompt("a red fox", device="cpu")
    assert torch.equal(want, got)


def test_lower_profiles_apply_on_top_of_higher_ones(tiny_data_dir: Path, tmp_path: Path) -> None:
    engine = fresh_engine(tiny_data_dir, tmp_path)
    add_style(engine, "attn", ("attn.to_q",), seed=3)
    for profile in ("full", "balanced", "low", "low"):
        memory.apply_profile(engine.pipe, profile, device="cpu")
        assert pixels(engine, "attn") != pixels(engine, None)


async def test_out_of_memory_while_loading_a_style_is_an_oom_not_a_bad_file(
    tiny_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = fresh_engine(tiny_data_dir, tmp_path)
    add_style(engine, "attn", ("attn.to_q",), seed=4)
    add_style(engine, "wide", ("attn.to_q", "img_mod.1"), seed=5)  # needs a bigger slot later

    def oom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    engine.styles._slot = None  # the next style needs a new slot: diffusers runs out of memory
    monkeypatch.setattr(engine.pipe, "load_lora_weights", oom)
    executor = LocalExecutor(engine, jpeg_quality=90)
    try:
        with pytest.raises(GenerationFailed, match="ran out of memory"):
            await executor.generate(1, spec(style="wide"), no_progress)
        assert "wide" in [s.name for s in executor.styles()]  # not refused as a bad file
        assert "wide" not in engine.styles.refused
        monkeypatch.undo()
        ok = await executor.generate(2, spec(style="wide"), no_progress)
    finally:
        await executor.aclose()
    assert ok.jpeg


def test_compile_survives_cycling_more_styles_than_stay_resident(
    tiny_data_dir: Path, tmp_path: Path
) -> None:
    """One adapter per style (the old design) hits the recompile limit here after 4 styles
    (``FailOnRecompileLimitHit``, then every later job fails); the style slot compiles twice."""
    import torch._dynamo

    torch._dynamo.reset()
    engine = fresh_engine(
        tiny_data_dir, tmp_path, TURBOBOT_COMPILE="1", TURBOBOT_MAX_RESIDENT_STYLES="2"
    )
    names = [f"s{i}" for i in range(6)]  # max_resident_styles + 4
    suffixes = ("attn.to_q", "attn.to_v", "attn.add_q_proj")
    for i, name in enumerate(names):
        add_style(engine, name, suffixes[: 1 + i % 3], seed=10 + i)
    engine.styles.prepare_slot(engine.pipe)
    memory.apply_profile(engine.pipe, "cpu", compile_blocks=True, compile_backend="eager")
    cycle = [*names, None, *reversed(names), None]
    with torch._dynamo.config.patch(recompile_limit=4):
        first = [pixels(engine, s) for s in cycle]  # compiles: with and without the style slot
        with torch._dynamo.config.patch(error_on_recompile=True):
            second = [pixels(engine, s) for s in cycle]  # any recompile would raise here
    assert first == second
    assert len(set(first)) == len(names) + 1
    torch._dynamo.reset()
