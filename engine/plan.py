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

``python -m engine.plan_table --markdown`` prints the table BENCHMARKS.md carries
(:mod:`engine.plan_table`).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.domain import ASPECTS
from engine.activations import (
    text_encoder_activations,
    transformer_activations,
    vae_decode_activations,
    vlm_prefill_activations,
)

log = logging.getLogger(__name__)

Profile = Literal["full", "balanced", "low", "cpu"]
GPU_PROFILES: tuple[Profile, ...] = ("full", "balanced", "low")  # best first
CONFIG_DIR = Path(__file__).parent / "configs" / "qwen_image_2512"
GIB = 2**30

MARGIN_GIB = 1.5  # allocator fragmentation, cuBLAS workspaces, CUDA graphs: never plan to 100 %
# The largest aspect's image tokens after 8x VAE and 2x2 patches (1024x1024: 4096).
MAX_IMAGE_TOKENS = max((a.width // 16) * (a.height // 16) for a in ASPECTS.values())
TEXT_TOKENS = 512 + 34  # max_sequence_length plus the prompt template the pipeline drops
PROCESS_BASE_BYTES = 3 * GIB  # Python, torch, CUDA runtime and the bot itself in host RAM


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


# ---------------------------------------------------------------- LoRA sizes

TURBO_BYTES = 1_180_000_000  # the Wuli-Art Turbo file (rank 64 over the 840 block Linears)
STYLE_BYTES = 590_000_000  # a rank-32 style over the same Linears
RESIDENT_STYLES = 4  # TURBOBOT_MAX_RESIDENT_STYLES' default
