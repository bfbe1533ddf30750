"""Activation memory of each stage (bf16), for :mod:`engine.plan`: what a batch of images, the
text encoder, a VLM prefill and the VAE decode need beyond the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.plan import ModelSizes

# A 1024x1024 image through Qwen2.5-VL (14 px patches, 2x2 merge: 1024²/28² ≈ 1,337 tokens) plus
# the instructions: the largest prompt a describe or safety check prefills (engine.vlm).
VLM_PREFILL_TOKENS = 1337 + 200
# VAE decode: about a dozen live 96-channel bf16 tensors at full resolution untiled; with
# tiling, at one 256 px tile plus its overlap. Estimates (the VAE is the least of the memory).
_VAE_LIVE_TENSORS = 12
_VAE_TILE_SIDE = 320


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
