"""The LoRA normaliser: every real key layout, on the real 60-layer transformer (``meta``) and
on the tiny model (same image from every layout), and refusals that name what did not match."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine import plan
from engine.lora_keys import (
    Header,
    LinearShapes,
    LoraRefused,
    check_header,
    inspect_header,
    normalise,
    underscore_index,
)
from engine.styles import linear_shapes

Writer = Callable[[str, str, str], str]
# How each real layout spells (module, part) with part "A", "B" or "alpha".
PARTS = {"A": ("lora_A", "lora_down"), "B": ("lora_B", "lora_up")}


def _ab(part: str, kohya: bool) -> str:
    return PARTS[part][1 if kohya else 0] if part != "alpha" else "alpha"


def _spell(prefix: str, kohya: bool, default: bool = False) -> Callable[[str, str], str]:
    def key(module: str, part: str) -> str:
        if part == "alpha":
            return f"{prefix}{module}.alpha"
        mid = ".default" if default else ""
        return f"{prefix}{module}.{_ab(part, kohya)}{mid}.weight"

    return key


def _kohya_unet(module: str, part: str) -> str:
    flat = module.replace(".", "_")
    return (
        f"lora_unet_{flat}.alpha"
        if part == "alpha"
        else f"lora_unet_{flat}.{_ab(part, True)}.weight"
    )


# layout name → (key spelling, whether the layout carries alpha)
LAYOUTS: dict[str, tuple[Callable[[str, str], str], bool]] = {
    "diffusers": (_spell("transformer.", kohya=False), False),
    "diffusers+alpha": (_spell("transformer.", kohya=False), True),
    "lightning (bare A/B)": (_spell("", kohya=False), False),
    "bare down/up+alpha": (_spell("", kohya=True), True),
    "kohya lora_unet_": (_kohya_unet, True),
    "diffsynth .default": (_spell("", kohya=False, default=True), False),
    "comfyui diffusion_model": (_spell("diffusion_model.", kohya=True), True),
    "peft base_model.model": (_spell("base_model.model.", kohya=False), False),
}


def block_linears(linears: LinearShapes) -> list[str]:
    return sorted(n for n in linears if n.startswith("transformer_blocks."))


def header_for(layout: str, linears: LinearShapes, modules: list[str], rank: int) -> Header:
    spell, alpha = LAYOUTS[layout]
    out: Header = {}
    for m in modules:
        out_f, in_f = linears[m]
        out[spell(m, "A")] = ("BF16", (rank, in_f))
        out[spell(m, "B")] = ("BF16", (out_f, rank))
        if alpha:
            out[spell(m, "alpha")] = ("F32", ())
    return out


def tensors_for(
    layout: str, weights: dict[str, tuple[torch.Tensor, torch.Tensor]], scale: float
) -> dict[str, torch.Tensor]:
    """The same LoRA in ``layout``: alpha = scale x rank where the layout has alpha, else B is
    pre-scaled (scale is a power of two, so both are exact in bf16)."""
    spell, alpha = LAYOUTS[layout]
    out: dict[str, torch.Tensor] = {}
    for m, (a, b) in weights.items():
        out[spell(m, "A")] = a
        out[spell(m, "B")] = b if alpha else (b.float() * scale).to(torch.bfloat16)
        if alpha:
            out[spell(m, "alpha")] = torch.tensor(scale * a.shape[0])
    return out


# ---------------------------------------------------------------- the real transformer on meta


@pytest.fixture(scope="module")
def real_linears() -> LinearShapes:
    return linear_shapes(plan.build_on_meta("transformer"))


def test_the_real_transformer_has_840_block_linears(real_linears: LinearShapes) -> None:
    blocks = block_linears(real_linears)
    assert len(blocks) == 840
    assert real_linears["transformer_blocks.7.img_mlp.net.0.proj"] == (12288, 3072)
    assert real_linears["transformer_blocks.7.img_mod.1"] == (18432, 3072)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_maps_all_840_real_modules_at_rank_64(
    real_linears: LinearShapes, layout: str
) -> None:
    blocks = block_linears(real_linears)
    report = inspect_header(header_for(layout, real_linears, blocks, 64), real_linears)
    print(layout, report.layouts, report.rank, len(report.modules), report.has_alpha)
    assert report.ok, report.problem()
    assert report.modules == tuple(blocks)
    assert (report.rank, report.ranks) == (64, (64,))
    assert report.has_alpha == LAYOUTS[layout][1]
    assert report.linears_total == len(real_linears)


def test_kohya_underscore_names_map_back_to_the_real_dotted_modules(
    real_linears: LinearShapes,
) -> None:
    flat = underscore_index(real_linears)
    assert flat["transformer_blocks_7_attn_to_out_0"] == "transformer_blocks.7.attn.to_out.0"
    assert (
        flat["transformer_blocks_59_img_mlp_net_0_proj"]
        == "transformer_blocks.59.img_mlp.net.0.proj"
    )
    assert flat["transformer_blocks_0_txt_mod_1"] == "transformer_blocks.0.txt_mod.1"


def test_a_subset_of_layers_and_mixed_ranks_are_accepted(real_linears: LinearShapes) -> None:
    attn = [m for m in block_linears(real_linears) if ".attn." in m]
    header = header_for("comfyui diffusion_model", real_linears, attn[:100], 16)
    header |= header_for("comfyui diffusion_model", real_linears, attn[100:], 32)
    report = check_header(header, real_linears, "mixed.safetensors")
    assert (len(report.modules), report.rank, report.ranks) == (len(attn), 32, (16, 32))


def flux_header() -> Header:
    return {
        "lora_unet_single_blocks_0_linear1.lora_down.weight": ("BF16", (16, 3072)),
        "lora_unet_single_blocks_0_linear1.lora_up.weight": ("BF16", (21504, 16)),
    }


def sdxl_shapes(real: LinearShapes) -> Header:
    m = "transformer_blocks.0.attn.to_q"
    return {f"{m}.lora_A.weight": ("BF16", (8, 2048)), f"{m}.lora_B.weight": ("BF16", (3072, 8))}


def unpaired(real: LinearShapes) -> Header:
    h = header_for("diffusers", real, block_linears(real)[:3], 8)
    del h["transformer.transformer_blocks.0.attn.add_k_proj.lora_B.weight"]
    return h


def rank_mismatch(real: LinearShapes) -> Header:
    h = header_for("diffusers", real, block_linears(real)[:2], 8)
    h["transformer.transformer_blocks.0.attn.add_k_proj.lora_B.weight"] = ("BF16", (3072, 4))
    return h


def one_stray_key(real: LinearShapes) -> Header:
    h = header_for("diffusers", real, block_linears(real)[:5], 8)
    return h | {"text_encoder.layers.0.q_proj.lora_A.weight": ("BF16", (8, 3584))}


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda real: flux_header(), ["match no layer", "single_blocks_0_linear1"]),
        (sdxl_shapes, ["do not fit", "to_q.lora_A.weight"]),
        (unpaired, ["lack lora_A or lora_B", "add_k_proj"]),
        (rank_mismatch, ["rank 8 != lora_B rank 4"]),
        (one_stray_key, ["1 key(s) match no layer", "text_encoder.layers.0.q_proj"]),
        (lambda real: {}, ["no LoRA tensors"]),
    ],
)
def test_refusals_name_what_did_not_match(
    real_linears: LinearShapes, make: Callable[[LinearShapes], Header], words: list[str]
) -> None:
    header = make(real_linears)
    assert not inspect_header(header, real_linears).ok
    with pytest.raises(LoraRefused) as err:
        check_header(header, real_linears, "x.safetensors")
    message = str(err.value)
    print(message)
    assert "\n" not in message
    assert message.startswith("x.safetensors: ")
    for w in words:
        assert w in message


# ---------------------------------------------------------------- tensors and the tiny model


def random_lora(
    linears: LinearShapes, rank: int, seed: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for m in block_linears(linears):
        out_f, in_f = linears[m]
        a = (torch.randn(rank, in_f, generator=gen) * 0.3).to(torch.bfloat16)
        b = (torch.randn(out_f, rank, generator=gen) * 0.3).to(torch.bfloat16)
        out[m] = (a, b)
    return out


def test_normalise_folds_alpha_into_b(tiny_linears: LinearShapes) -> None:
    weights = random_lora(tiny_linears, 4, 1)
    canonical = normalise(tensors_for("diffusers", weights, 2.0), tiny_linears, "c")
    for layout in LAYOUTS:
        got = normalise(tensors_for(layout, weights, 2.0), tiny_linears, layout)
        assert got.keys() == canonical.keys()
        assert all(torch.equal(got[k], canonical[k]) for k in got), layout
    m = block_linears(tiny_linears)[0]
    assert torch.equal(
        canonical[f"{m}.lora_B.weight"], (weights[m][1].float() * 2).to(torch.bfloat16)
    )
    assert not any("alpha" in k for k in canonical)


@pytest.fixture(scope="module")
def tiny_linears(session_engine: object) -> LinearShapes:
    return session_engine.styles.linears  # type: ignore[attr-defined,no-any-return]


def test_the_canonical_dict_loads_every_module_through_diffusers(
    session_engine: object, tiny_linears: LinearShapes, tmp_path: Path
) -> None:
    from engine.style_library import drop_adapter, load_adapter, lora_layers
    from engine.styles import load_lora_tensors

    pipe = session_engine.pipe  # type: ignore[attr-defined]
    weights = random_lora(tiny_linears, 4, 2)
    for layout in ("lightning (bare A/B)", "diffusers+alpha"):  # each failed before normalising
        path = tmp_path / "x.safetensors"
        save_file(tensors_for(layout, weights, 2.0), str(path))
        load_adapter(pipe, load_lora_tensors(path, tiny_linears), "probe", path.name)
        try:
            layers = lora_layers(pipe.transformer, "probe")
            assert sorted(layers) == sorted(weights)
            m = sorted(weights)[0]
            b = layers[m].lora_B["probe"].weight
            assert b.dtype == torch.bfloat16
            assert torch.equal(b, (weights[m][1].float() * 2).to(torch.bfloat16))
        finally:
            drop_adapter(pipe, "probe")
