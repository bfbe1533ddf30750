"""Memory profiles: tested recipes for placing the pipeline on one device.

``full``: everything resident in bf16 (~54 GiB + LoRAs; 80 GB cards); optional ``torch.compile``.
``balanced``: transformer and VAE resident in bf16; the text encoder streams leaf by leaf from
pinned host memory (group offload with CUDA streams). No model CPU offload: ``pipe()`` ends with
``maybe_free_model_hooks()``, which would move the transformer back to the host after every image.
``low``: ``balanced`` with the transformer's Linear weights stored in float8 (bf16 compute): the
24 GB recipe. LoRA weights are never cast (``lora_`` is skipped), so styles stay exact.
``cpu``: no CUDA; works, slowly. ``auto`` decides from :mod:`engine.plan`.

Every step runs on CPU too (``device="cpu"``: group offload without streams, fp8 storage), which
is how the tests check each recipe renders a style.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

import torch

from bot.config import MemoryProfile
from engine import plan
from engine.plan import Profile

log = logging.getLogger(__name__)

__all__ = ["Profile", "apply_profile", "choose_profile", "lower_profile", "set_alloc_conf"]

ALLOC_CONF = "expandable_segments:True"
_LOWER: dict[Profile, Profile | None] = {
    "full": "balanced",
    "balanced": "low",
    "low": None,
    "cpu": None,
}
LORA_PATTERN = "lora_"  # peft's lora_A / lora_B modules: never stored in float8


def choose_profile(
    requested: MemoryProfile,
    *,
    cuda: bool,
    free_vram_gb: float,
    loras_bytes: int = 0,
    resident_styles_bytes: int = 0,
) -> Profile:
    """The profile to use; ``auto`` takes the best one the memory plan fits (with a margin)."""
    if not cuda:
        if requested not in ("auto", "cpu"):
            log.warning(
                "Memory profile %r needs CUDA, which is not available: using cpu.", requested
            )
        return "cpu"
    best, the_plan = plan.choose_profile(  # logs the plan either way
        free_vram_gb, loras_bytes, resident_styles_bytes=resident_styles_bytes
    )
    if requested == "auto":
        return best
    if requested != "cpu" and not the_plan.row(requested).fits:
        log.warning(
            "Memory profile %s needs %.1f GiB of GPU memory (plus a %.1f GiB margin) but %.1f "
            "GiB are free: expect out-of-memory errors (auto would pick %s).",
            requested,
            the_plan.row(requested).vram_gib,
            the_plan.margin_gib,
            free_vram_gb,
            best,
        )
    return requested


def lower_profile(profile: Profile) -> Profile | None:
    """The next profile down after a CUDA out-of-memory error (None: nothing lower to try)."""
    return _LOWER[profile]


def set_alloc_conf(environ: MutableMapping[str, str] = os.environ) -> None:
    """Ask for expandable segments (less fragmentation); only effective before CUDA starts."""
    environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", ALLOC_CONF)


def cuda_free_gb() -> float:
    if not torch.cuda.is_available():
        return 0.0
    free, _total = torch.cuda.mem_get_info()
    return free / 2**30


def apply_profile(
    pipe: Any,
    profile: Profile,
    *,
    device: str = "cuda",
    compile_blocks: bool = False,
    compile_backend: str | None = None,
) -> None:
    """Place ``pipe`` according to ``profile``; also moves a placed pipe to a lower profile.

    ``device="cpu"`` runs the same steps without CUDA (tests). ``compile_backend`` is for tests
    too (``"eager"``); the default is inductor.
    """
    pipe.remove_all_hooks()  # accelerate hooks (model offload) never belong to our recipes
    if profile == "cpu":
        pipe.to("cpu")
    elif profile == "full":
        pipe.to(device)
    else:
        stream_text_encoder(pipe.text_encoder, torch.device(device))
        if profile == "low":
            store_fp8(pipe.transformer)
        pipe.transformer.to(device)
        pipe.vae.to(device)
        pipe.vae.enable_tiling()
    if compile_blocks:
        kwargs = {"backend": compile_backend} if compile_backend else {}
        pipe.transformer.compile_repeated_blocks(fullgraph=True, **kwargs)
    log.info("Memory profile %s applied", profile)


def store_fp8(transformer: Any) -> None:
    """float8 storage, bf16 compute for the transformer's Linears; LoRA layers stay bf16."""
    from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

    if getattr(transformer, "_turbobot_fp8", False):
        return
    skip = (
        *DEFAULT_SKIP_MODULES_PATTERN,
        *(transformer._skip_layerwise_casting_patterns or ()),
        LORA_PATTERN,
    )
    transformer.enable_layerwise_casting(
        storage_dtype=torch.float8_e4m3fn,
        compute_dtype=torch.bfloat16,
        skip_modules_pattern=tuple(skip),
    )
    transformer._turbobot_fp8 = True


class HostEmbedding(torch.nn.Module):
    """The text encoder's token embedding, looked up on the CPU.

    1 GiB for Qwen2.5-VL that a lookup of a few hundred rows does not need on the GPU. The
    table is a plain attribute, not a parameter, so ``.to()`` and group offload leave it alone.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = weight.detach().to("cpu")

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = torch.nn.functional.embedding(input_ids.to("cpu"), self.weight)
        return rows.to(input_ids.device)


def stream_text_encoder(text_encoder: Any, device: torch.device) -> None:
    """Leaf-level group offload of the text decoder (streams + pinned memory on CUDA).

    Before: the LM head goes (the pipeline reads hidden states, never logits) and the token
    embedding moves to :class:`HostEmbedding`; the vision tower stays in host RAM (never run).
    """
    from diffusers.hooks.group_offloading import apply_group_offloading

    decoder = text_encoder.model.language_model
    if getattr(text_encoder, "_turbobot_streamed", False):
        return
    text_encoder.to("cpu")
    text_encoder.lm_head = torch.nn.Identity()
    decoder.embed_tokens = HostEmbedding(decoder.embed_tokens.weight)
    apply_group_offloading(
        decoder,
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="leaf_level",
        use_stream=device.type == "cuda",
    )
    text_encoder._turbobot_streamed = True


def empty_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak() -> None:
    """Start a fresh peak (allocated and reserved) for the next measurement."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_bytes() -> tuple[int, int]:
    """Peak CUDA bytes (allocated, reserved) since :func:`reset_peak`; (0, 0) without CUDA."""
    if not torch.cuda.is_available():
        return 0, 0
    return torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()


def synchronize() -> None:
    """Wait for queued GPU work, so a wall-clock time means finished work (no-op on CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        torch.cuda.synchronize()


def device_name() -> str:
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        name = torch.cuda.get_device_name(torch.cuda.current_device())
        return f"{name} ({total / 2**30:.1f} GiB, {free / 2**30:.1f} free)"
    return "cpu"


def host_rss_bytes() -> int:
    """This process's resident host memory now (Linux ``/proc``; 0 elsewhere)."""
    from pathlib import Path

    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_memory_mb() -> float:
    """Peak CUDA memory since the last reset, or this process's peak RSS on CPU."""
    import resource

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
