"""Memory profiles: how the pipeline is placed on the device.

``full``: everything on one GPU (~54 GiB bf16; optional ``torch.compile`` of repeated blocks).
``balanced``: text encoder and VAE leave the GPU when idle (model CPU offload), VAE tiling.
``low``: group offload with CUDA streams and fp8 weight storage with bf16 compute (24 GB cards).
``cpu``: no CUDA; works, slowly. ``auto`` picks by free VRAM.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any, Literal

from bot.config import MemoryProfile

log = logging.getLogger(__name__)

Profile = Literal["full", "balanced", "low", "cpu"]
ALLOC_CONF = "expandable_segments:True"
_LOWER: dict[Profile, Profile | None] = {
    "full": "balanced",
    "balanced": "low",
    "low": None,
    "cpu": None,
}


def choose_profile(requested: MemoryProfile, *, cuda: bool, free_vram_gb: float) -> Profile:
    """The profile to use; ``auto``: ≥ 60 GB free → full, ≥ 30 → balanced, else low."""
    if not cuda:
        if requested not in ("auto", "cpu"):
            log.warning(
                "Memory profile %r needs CUDA, which is not available: using cpu.", requested
            )
        return "cpu"
    if requested != "auto":
        return requested
    if free_vram_gb >= 60:
        return "full"
    return "balanced" if free_vram_gb >= 30 else "low"


def lower_profile(profile: Profile) -> Profile | None:
    """The next profile down after a CUDA out-of-memory error (None: nothing lower to try)."""
    return _LOWER[profile]


def set_alloc_conf(environ: MutableMapping[str, str] = os.environ) -> None:
    """Ask for expandable segments (less fragmentation); only effective before CUDA starts."""
    environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", ALLOC_CONF)


def cuda_free_gb() -> float:
    import torch

    if not torch.cuda.is_available():
        return 0.0
    free, _total = torch.cuda.mem_get_info()
    return free / 2**30


def apply_profile(pipe: Any, profile: Profile, *, compile_blocks: bool = False) -> None:
    """Place ``pipe`` according to ``profile`` (CUDA-only calls are skipped for ``cpu``)."""
    import torch

    if profile == "cpu":
        pipe.to("cpu")
        return
    pipe.remove_all_hooks()  # a lower profile replaces the offload hooks of a higher one
    if profile == "full":
        pipe.to("cuda")
        if compile_blocks:
            pipe.transformer.compile_repeated_blocks(fullgraph=True)
    elif profile == "balanced":
        pipe.enable_model_cpu_offload()
        pipe.vae.enable_tiling()
    else:
        pipe.to("cpu")
        pipe.transformer.enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16
        )
        from diffusers.hooks.group_offloading import apply_group_offloading

        cuda = torch.device("cuda")
        pipe.transformer.enable_group_offload(
            onload_device=cuda, offload_type="block_level", num_blocks_per_group=1, use_stream=True
        )
        # The text encoder is a transformers model: the generic hook does the same for it.
        apply_group_offloading(
            pipe.text_encoder, onload_device=cuda, offload_type="leaf_level", use_stream=True
        )
        pipe.vae.to("cuda")
        pipe.vae.enable_tiling()
    log.info("Memory profile %s applied", profile)


def empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_memory_mb() -> float:
    """Peak CUDA memory since the last reset, or this process's peak RSS on CPU."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
