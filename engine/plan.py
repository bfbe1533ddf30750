"""Memory plan: VRAM and host RAM per memory profile, computed from the real model configs.

The real Qwen-Image-2512 component configs ship in ``engine/configs/qwen_image_2512/`` and are
built on the ``meta`` device (shapes only, no memory), so the plan knows every parameter's size
without the 54 GiB of weights. Activations are estimated for the largest aspect. ``auto`` picks
the highest profile whose VRAM fits the free memory with a margin (:func:`choose_profile`).

Profiles (see :mod:`engine.memory` for the recipes):

* ``full``: transformer, text encoder and VAE resident in bf16.
* ``balanced``: transformer and VAE resident in bf16; the text encoder streams leaf by leaf from
  pinned host memory (group offload with CUDA streams).
* ``low``: as balanced, but the transformer's Linear weights are stored in float8 (bf16 compute,
  LoRA weights stay bf16): the 24 GB recipe.
* ``cpu``: no GPU.

Host RAM: group offload with streams keeps a pinned copy of every text-encoder tensor, and torch's
caching host allocator rounds each pinned block up to a power of two; the originals are freed at
each leaf's first onload, so until the first image both exist. ``from_pretrained`` first loads
every component in bf16 into host RAM.

``python -m engine.plan --markdown`` prints the table BENCHMARKS.md carries.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.domain import ASPECTS, UPSCALE_LONG_SIDE

log = logging.getLogger(__name__)

Profile = Literal["full", "balanced", "low", "cpu"]
GPU_PROFILES: tuple[Profile, ...] = ("full", "balanced", "low")  # best first
CONFIG_DIR = Path(__file__).parent / "configs" / "qwen_image_2512"
GIB = 2**30

MARGIN_GIB = 1.5  # allocator fragmentation, cuBLAS workspaces, CUDA graphs: never plan to 100 %
# The largest aspect's image tokens after 8x VAE and 2x2 patches (1024x1024: 4096).
MAX_IMAGE_TOKENS = max((a.width // 16) * (a.height // 16) for a in ASPECTS.values())
TEXT_TOKENS = 512 + 34  # max_sequence_length plus the prompt template the pipeline drops
# A 1024x1024 image through Qwen2.5-VL (14 px patches, 2x2 merge: 1024²/28² ≈ 1,337 tokens) plus
# the instructions: the largest prompt a describe or safety check prefills (engine.vlm).
VLM_PREFILL_TOKENS = 1337 + 200
PROCESS_BASE_BYTES = 3 * GIB  # Python, torch, CUDA runtime and the bot itself in host RAM
# VAE decode: about a dozen live 96-channel bf16 tensors at full resolution untiled; with
# tiling, at one 256 px tile plus its overlap. Estimates (the VAE is the least of the memory).
_VAE_LIVE_TENSORS = 12
_VAE_TILE_SIDE = 320


@dataclass(frozen=True, slots=True)
class ModelSizes:
    """Bytes of each component, measured on the real configs built on ``meta``."""

    transformer_bf16: int
    transformer_fp8: int  # Linear weights in float8, the rest (norms, embeddings) in bf16
    text_encoder_bf16: int
    text_encoder_pinned: int  # streamed tensors, each rounded up to a power of two (pinned)
    text_encoder_stream: int  # VRAM of streaming: the largest pair of consecutive leaves
    text_encoder_embed: int  # the token embedding, kept in host RAM (looked up on the CPU)
    text_encoder_host: int  # everything not streamed that stays in host RAM (embedding, vision)
    text_encoder_lm_head: int  # bf16 bytes of the LM head (dropped unless the VLM is on)
    text_encoder_visual: int  # bf16 bytes of the vision tower (host RAM, or streamed with VLM)
    vlm_pinned: int  # pinned bytes of the vision tower, streamed when the VLM is on
    vae_bf16: int
    hidden: int  # transformer inner dim (heads x head dim)
    mlp_hidden: int  # transformer feed-forward dim
    vae_base_dim: int
    text_hidden: int
    text_vocab: int


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    """What one profile needs: peak VRAM, host RAM steady and host RAM peak (loading)."""

    profile: Profile
    vram_bytes: int
    host_steady_bytes: int
    host_peak_bytes: int
    fits: bool  # vram + margin <= the GPU's free memory (always True for cpu)

    @property
    def vram_gib(self) -> float:
        return self.vram_bytes / GIB

    @property
    def host_steady_gib(self) -> float:
        return self.host_steady_bytes / GIB

    @property
    def host_peak_gib(self) -> float:
        return self.host_peak_bytes / GIB


@dataclass(frozen=True, slots=True)
class Plan:
    """The memory plan for one GPU (``gpu_gib`` free memory; None: no GPU)."""

    gpu_gib: float | None
    margin_gib: float
    loras_bytes: int
    rows: tuple[ProfilePlan, ...]

    @property
    def chosen(self) -> Profile:
        """The best profile that fits; ``low`` when nothing fits (it is the smallest recipe)."""
        if self.gpu_gib is None:
            return "cpu"
        return next((r.profile for r in self.rows if r.fits), "low")

    @property
    def fits_any(self) -> bool:
        return self.gpu_gib is None or any(r.fits for r in self.rows)

    def row(self, profile: Profile) -> ProfilePlan:
        return next(r for r in self.rows if r.profile == profile)

    def describe(self) -> str:
        """One line per profile, for the log at start."""
        gpu = "no GPU" if self.gpu_gib is None else f"{self.gpu_gib:.1f} GiB free"
        lines = [f"memory plan ({gpu}, margin {self.margin_gib:g} GiB) → {self.chosen}"]
        lines += [
            f"  {r.profile:<9} VRAM {r.vram_gib:5.1f} GiB  host {r.host_steady_gib:5.1f} GiB "
            f"(peak {r.host_peak_gib:5.1f} while loading)  {'fits' if r.fits else 'does not fit'}"
            for r in self.rows
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------- sizes from the real configs


def read_config(component: str, config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """One component's config (``transformer``, ``vae`` or ``text_encoder``) as a dict."""
    data: dict[str, Any] = json.loads((config_dir / f"{component}.json").read_text("utf-8"))
    return data


def build_on_meta(component: str, config_dir: Path = CONFIG_DIR) -> Any:
    """The component with its real structure on the ``meta`` device (no memory, no weights)."""
    from accelerate import init_empty_weights

    config = read_config(component, config_dir)
    with init_empty_weights():
        if component == "transformer":
            from diffusers import QwenImageTransformer2DModel

            return QwenImageTransformer2DModel.from_config(config)  # type: ignore[no-untyped-call]
        if component == "vae":
            from diffusers import AutoencoderKLQwenImage

            return AutoencoderKLQwenImage.from_config(config)  # type: ignore[no-untyped-call]
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))


@functools.cache
def real_sizes() -> ModelSizes:
    """:class:`ModelSizes` of Qwen-Image-2512 (built once per process, ~2 s)."""
    transformer = build_on_meta("transformer")
    text_encoder = build_on_meta("text_encoder")
    vae = build_on_meta("vae")
    tcfg, vcfg = read_config("transformer"), read_config("vae")
    te_text = read_config("text_encoder")["text_config"]
    hidden = int(tcfg["num_attention_heads"]) * int(tcfg["attention_head_dim"])
    return ModelSizes(
        transformer_bf16=_param_bytes(transformer, 2),
        transformer_fp8=fp8_bytes(transformer),
        text_encoder_bf16=_param_bytes(text_encoder, 2),
        text_encoder_pinned=sum(pinned_block(n) for n in streamed_leaves(text_encoder).values()),
        text_encoder_stream=stream_bytes(text_encoder),
        text_encoder_embed=_param_bytes(text_encoder.get_input_embeddings(), 2),
        text_encoder_host=_param_bytes(text_encoder.get_input_embeddings(), 2)
        + _param_bytes(text_encoder.model.visual, 2),
        text_encoder_lm_head=_param_bytes(text_encoder.lm_head, 2),
        text_encoder_visual=_param_bytes(text_encoder.model.visual, 2),
        vlm_pinned=sum(pinned_block(n) for n in vlm_leaves(text_encoder).values()),
        vae_bf16=_param_bytes(vae, 2),
        hidden=hidden,
        mlp_hidden=4 * hidden,
        vae_base_dim=int(vcfg["base_dim"]),
        text_hidden=int(te_text["hidden_size"]),
        text_vocab=int(te_text["vocab_size"]),
    )


def _param_bytes(module: Any, itemsize: int) -> int:
    return int(sum(p.numel() for p in module.parameters())) * itemsize


def fp8_bytes(transformer: Any) -> int:
    """Bytes after ``enable_layerwise_casting(float8)``: Linears 1 byte, skipped modules bf16."""
    import torch
    from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

    own_skip = getattr(transformer, "_skip_layerwise_casting_patterns", None) or ()
    skip = (*DEFAULT_SKIP_MODULES_PATTERN, *own_skip)
    total = 0
    for name, module in transformer.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        cast = isinstance(module, torch.nn.Linear) and not any(re.search(s, name) for s in skip)
        total += own * (1 if cast else 2)
    return total


# Not streamed by the offloaded profiles: the embedding is looked up on the CPU, the LM head is
# dropped (the pipeline reads hidden states, never logits) and the vision tower never runs.
TEXT_ENCODER_NOT_STREAMED = ("embed_tokens", "lm_head", "visual")


def streamed_leaves(text_encoder: Any) -> dict[str, int]:
    """Leaf module → bf16 bytes, in execution order, of what leaf-level group offload streams."""
    return {
        name: sum(p.numel() for p in m.parameters(recurse=False)) * 2
        for name, m in text_encoder.named_modules()
        if not list(m.children()) and not any(s in name for s in TEXT_ENCODER_NOT_STREAMED)
    }


def vlm_leaves(text_encoder: Any) -> dict[str, int]:
    """Leaf module → bf16 bytes of what streams only with the VLM on (the vision tower)."""
    return {
        name: sum(p.numel() for p in m.parameters(recurse=False)) * 2
        for name, m in text_encoder.named_modules()
        if not list(m.children()) and "visual" in name
    }


def stream_bytes(text_encoder: Any) -> int:
    """VRAM of leaf-level group offload: a leaf plus the next one, prefetched on a stream."""
    sizes = list(streamed_leaves(text_encoder).values())
    return max(a + b for a, b in itertools.pairwise(sizes))


def pinned_block(nbytes: int) -> int:
    """Pinned host bytes for one tensor: torch's caching host allocator rounds to a power of 2."""
    return 1 << max(0, nbytes - 1).bit_length() if nbytes > 0 else 0


# ---------------------------------------------------------------- activations


def transformer_activations(
    sizes: ModelSizes, tokens: int, text_tokens: int, *, images: int = 1
) -> int:
    """Peak activation bytes of one transformer block (bf16, flash/SDPA attention), for a batch
    of ``images`` (they grow linearly with the batch; the weights do not)."""
    return images * activations_per_image(sizes.hidden, sizes.mlp_hidden, tokens, text_tokens)


def activations_per_image(hidden: int, mlp_hidden: int, tokens: int, text_tokens: int) -> int:
    """One image's share of a transformer block's peak activations (bf16)."""
    return (tokens + text_tokens) * (12 * hidden + 3 * mlp_hidden) * 2


def batch_sizes(
    n: int, per_image_bytes: int, free_bytes: int | None, margin_bytes: int
) -> list[int]:
    """How ``n`` images run: as few batches as the free memory allows (None: no limit, CPU).

    A batch of ``b`` needs ``b`` images' activations plus the margin beyond what is resident
    now; one image always runs (the weights' plan already counted its activations)."""
    if free_bytes is None:
        return [n]
    fit = (free_bytes - margin_bytes) // per_image_bytes if per_image_bytes > 0 else n
    b = max(1, min(n, int(fit)))
    return [b] * (n // b) + ([n % b] if n % b else [])


def text_encoder_activations(sizes: ModelSizes, text_tokens: int) -> int:
    """Hidden states of every layer (output_hidden_states) and the bf16 logits."""
    return text_tokens * (30 * sizes.text_hidden + sizes.text_vocab) * 2


def vlm_prefill_activations(sizes: ModelSizes, tokens: int | None = None) -> int:
    """An image prompt's prefill: every layer's hidden states (a bound) and one logit row
    (``logits_to_keep=1``); the vision tower's own activations are smaller (1280 wide)."""
    n = VLM_PREFILL_TOKENS if tokens is None else tokens
    return (n * 30 * sizes.text_hidden + sizes.text_vocab) * 2


def vae_decode_activations(sizes: ModelSizes, tokens: int, *, tiled: bool) -> int:
    side = _VAE_TILE_SIDE if tiled else int((tokens**0.5) * 16)
    return side * side * sizes.vae_base_dim * 2 * _VAE_LIVE_TENSORS


# ---------------------------------------------------------------- the plan


def plan_for(
    gpu_gib: float | None,
    loras_bytes: int,
    *,
    resident_styles_bytes: int = 0,
    tokens: int = MAX_IMAGE_TOKENS,
    text_tokens: int = TEXT_TOKENS,
    margin_gib: float = MARGIN_GIB,
    sizes: ModelSizes | None = None,
    vlm: bool = False,
    images: int = 1,
) -> Plan:
    """VRAM and host RAM of every profile for a GPU with ``gpu_gib`` free GiB (None: no GPU).

    ``loras_bytes``: LoRA weights that live on the GPU in every profile (the Turbo LoRA and the
    style slot, in bf16). ``resident_styles_bytes``: the cached resident styles, kept in host
    RAM (pinned when there is CUDA) and copied into the slot on a switch. ``vlm``: the LM head
    and vision tower are kept (describe, enhance, safety check; :mod:`engine.vlm`). ``images``: a
    batch of that many images in one transformer call (a grid); the VAE decodes them one by one.
    """
    s = sizes or real_sizes()
    args = (loras_bytes, resident_styles_bytes, tokens, text_tokens)
    rows = [
        _full(s, *args, images),
        _offloaded(s, "balanced", *args, vlm, images),
        _offloaded(s, "low", *args, vlm, images),
    ]
    margin = int(margin_gib * GIB)
    if gpu_gib is None:
        rows = [_cpu(s, loras_bytes + resident_styles_bytes)]
    else:
        free = int(gpu_gib * GIB)
        rows = [
            ProfilePlan(
                r.profile,
                r.vram_bytes,
                r.host_steady_bytes,
                r.host_peak_bytes,
                fits=r.vram_bytes + margin <= free,
            )
            for r in rows
        ]
    return Plan(gpu_gib=gpu_gib, margin_gib=margin_gib, loras_bytes=loras_bytes, rows=tuple(rows))


def _all_bf16(s: ModelSizes) -> int:
    return s.transformer_bf16 + s.text_encoder_bf16 + s.vae_bf16


def _full(  # noqa: PLR0917 - one row of the table
    s: ModelSizes, loras: int, styles: int, tokens: int, text_tokens: int, images: int = 1
) -> ProfilePlan:
    acts = max(
        transformer_activations(s, tokens, text_tokens, images=images),
        text_encoder_activations(s, text_tokens),
        vae_decode_activations(s, tokens, tiled=False),
    )
    host_peak = PROCESS_BASE_BYTES + _all_bf16(s) + loras + styles
    steady = PROCESS_BASE_BYTES + styles
    return ProfilePlan("full", _all_bf16(s) + loras + acts, steady, host_peak, fits=True)


def _offloaded(  # noqa: PLR0917 - one row of the table
    s: ModelSizes,
    profile: Profile,
    loras: int,
    styles: int,
    tokens: int,
    text_tokens: int,
    vlm: bool = False,
    images: int = 1,
) -> ProfilePlan:
    weights = s.transformer_fp8 if profile == "low" else s.transformer_bf16
    acts = max(
        transformer_activations(s, tokens, text_tokens, images=images),
        s.text_encoder_stream + text_encoder_activations(s, text_tokens),
        s.text_encoder_stream + vlm_prefill_activations(s) if vlm else 0,
        vae_decode_activations(s, tokens, tiled=True),
    )
    # With the VLM: the LM head stays in host RAM (computed on the CPU, no VRAM) and the vision
    # tower moves from plain host RAM into pinned blocks (rounded to powers of two) to stream.
    pinned = s.text_encoder_pinned + (s.vlm_pinned if vlm else 0)
    host = s.text_encoder_host + (s.text_encoder_lm_head - s.text_encoder_visual if vlm else 0)
    steady = PROCESS_BASE_BYTES + pinned + host + styles
    # Loading: all bf16 from from_pretrained; then the pinned copies sit beside the original
    # text-encoder tensors until each leaf's first onload.
    peak = PROCESS_BASE_BYTES + styles + max(_all_bf16(s) + loras, s.text_encoder_bf16 + pinned)
    return ProfilePlan(profile, weights + s.vae_bf16 + loras + acts, steady, peak, fits=True)


def _cpu(s: ModelSizes, loras: int) -> ProfilePlan:
    host = PROCESS_BASE_BYTES + _all_bf16(s) + loras
    return ProfilePlan("cpu", 0, host, host, fits=True)


def choose_profile(
    gpu_gib: float | None,
    loras_bytes: int,
    *,
    resident_styles_bytes: int = 0,
    margin_gib: float = MARGIN_GIB,
    vlm: bool = False,
) -> tuple[Profile, Plan]:
    """``auto``: the best profile whose VRAM plus the margin fits; logs the plan."""
    plan = plan_for(
        gpu_gib,
        loras_bytes,
        resident_styles_bytes=resident_styles_bytes,
        margin_gib=margin_gib,
        vlm=vlm,
    )
    log.info("%s", plan.describe())
    if not plan.fits_any:
        log.warning(
            "No memory profile fits %.1f GiB of free GPU memory with a %.1f GiB margin; trying "
            "low anyway (expect out-of-memory errors: free the GPU or use a bigger card).",
            gpu_gib or 0.0,
            margin_gib,
        )
    return plan.chosen, plan


# ---------------------------------------------------------------- the BENCHMARKS.md table

# Free memory after the CUDA context, per card class (GiB); nominal GB as sold.
CARDS: tuple[tuple[str, float], ...] = (
    ("24 GB (RTX 4090, RTX 3090)", 23.1),
    ("32 GB (RTX 5090)", 31.0),
    ("48 GB (L40S, RTX 6000 Ada)", 44.0),
    ("80 GB (H100, A100-80)", 78.6),
)
TURBO_BYTES = 1_180_000_000  # the Wuli-Art Turbo file (rank 64 over the 840 block Linears)
STYLE_BYTES = 590_000_000  # a rank-32 style over the same Linears
RESIDENT_STYLES = 4  # TURBOBOT_MAX_RESIDENT_STYLES' default


def markdown(sizes: ModelSizes | None = None) -> str:
    """The per-card table (VRAM, host RAM, what ``auto`` picks), from :func:`plan_for`."""
    s = sizes or real_sizes()
    gpu_loras = TURBO_BYTES + STYLE_BYTES  # Turbo + the one style slot
    styles = RESIDENT_STYLES * STYLE_BYTES
    lines = [
        f"Computed by `python -m engine.plan --markdown` from the real configs on `meta`: "
        f"transformer {s.transformer_bf16 / GIB:.1f} GiB bf16 ({s.transformer_fp8 / GIB:.1f} "
        f"GiB with fp8 Linears), text encoder {s.text_encoder_bf16 / GIB:.1f} GiB "
        f"({s.text_encoder_pinned / GIB:.1f} GiB pinned), VAE {s.vae_bf16 / GIB:.2f} GiB; "
        f"Turbo {TURBO_BYTES / 1e9:.2f} GB + a style slot {STYLE_BYTES / 1e9:.2f} GB on the GPU, "
        f"{RESIDENT_STYLES} resident styles; {MAX_IMAGE_TOKENS} image tokens; "
        f"margin {MARGIN_GIB:g} GiB.",
        "",
        "| profile | VRAM (GiB) | host RAM steady / while loading (GiB) |",
        "|---|---|---|",
    ]
    plan = plan_for(None, gpu_loras, resident_styles_bytes=styles, sizes=s)
    ref = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s)
    for r in (*ref.rows, *plan.rows):
        lines.append(
            f"| {r.profile} | {r.vram_gib:.1f} | {r.host_steady_gib:.1f} / {r.host_peak_gib:.1f} |"
        )
    lines += [
        "",
        "| card (free GiB) | full | balanced | low | `auto` picks |",
        "|---|---|---|---|---|",
    ]
    for label, free in CARDS:
        p = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s)
        cells = [("fits" if r.fits else "no") for r in p.rows]
        pick = p.chosen if p.fits_any else "none fits (low, expect OOM)"
        lines.append(f"| {label} ({free:g}) | {' | '.join(cells)} | {pick} |")
    lines += ["", _vlm_line(s, gpu_loras, styles)]
    return "\n".join(lines + grid_lines(s, gpu_loras, styles)) + "\n"


GRID = 4  # MAX_IMAGES: the batch a 4-image grid runs in when memory allows
UPSCALE_SIDE = UPSCALE_LONG_SIDE  # an upscale of a 1:1 image: the most tokens any job has
UPSCALE_TOKENS = (UPSCALE_SIDE // 16) ** 2


def grid_lines(s: ModelSizes, gpu_loras: int, styles: int) -> list[str]:
    """The grid table: VRAM of one batch of GRID images per profile, and per card."""
    one = transformer_activations(s, MAX_IMAGE_TOKENS, TEXT_TOKENS)
    single = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s)
    batch = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, images=GRID)
    lines = [
        "",
        f"Several images per prompt: the transformer's activations grow with the batch "
        f"({one / GIB:.2f} GiB an image at {MAX_IMAGE_TOKENS} tokens); the VAE decodes the "
        f"images one by one. The engine batches as many as the free VRAM allows after loading "
        f"(`engine.plan.batch_sizes`) and runs the rest in further batches.",
        "",
        f"| profile | VRAM, 1 image | VRAM, {GRID} images in one batch "
        f"| VRAM, upscale to {UPSCALE_SIDE}x{UPSCALE_SIDE} ({UPSCALE_TOKENS} tokens) |",
        "|---|---|---|---|",
    ]
    up = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, tokens=UPSCALE_TOKENS)
    lines += [
        f"| {a.profile} | {a.vram_gib:.1f} | {b.vram_gib:.1f} | {u.vram_gib:.1f} |"
        for a, b, u in zip(single.rows, batch.rows, up.rows, strict=True)
    ]
    lines += ["", f"| card (free GiB) | {GRID} images in one batch with |", "|---|---|"]
    for label, free in CARDS:
        p = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s)
        g = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s, images=GRID)
        fits = [r.profile for r in g.rows if r.fits and p.row(r.profile).fits]
        lines.append(f"| {label} ({free:g}) | {', '.join(fits) or 'none (batches of fewer)'} |")
    return lines


def _vlm_line(s: ModelSizes, gpu_loras: int, styles: int) -> str:
    """What TURBOBOT_VLM=1 (describe, enhance, safety check) adds to the offloaded profiles."""
    off = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s).row("low")
    on = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, vlm=True).row("low")
    return (
        f"With `TURBOBOT_VLM=1` (the default: describe, enhance, safety check) `balanced` and "
        f"`low` keep the LM head in host RAM ({s.text_encoder_lm_head / GIB:.2f} GiB, computed "
        f"on the CPU, one row per token) and stream the vision tower "
        f"({s.text_encoder_visual / GIB:.2f} GiB, {s.vlm_pinned / GIB:.2f} GiB pinned): host RAM "
        f"+{(on.host_steady_bytes - off.host_steady_bytes) / GIB:.1f} GiB, VRAM "
        f"+{(on.vram_bytes - off.vram_bytes) / GIB:.1f} GiB (a {VLM_PREFILL_TOKENS}-token image "
        f"prompt needs less than the transformer's activations). `full` holds both already."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md table")
    parser.add_argument("--gpu-gib", type=float, default=None, help="free GPU memory in GiB")
    parser.add_argument("--loras-gb", type=float, default=TURBO_BYTES / 1e9)
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(), end="")
        return
    print(plan_for(args.gpu_gib, int(args.loras_gb * 1e9)).describe())


if __name__ == "__main__":
    main()
