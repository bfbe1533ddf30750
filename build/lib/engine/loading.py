"""Load the pipeline (real weights or the tiny offline model), the Turbo LoRA and the styles."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.domain import BASE_STEPS
from bot.errors import TurbobotError
from bot.preflight import resolve_turbo
from engine import memory
from engine.pipeline import Engine
from engine.styles import (
    TURBO_ADAPTER,
    LoraRefused,
    Style,
    StyleLibrary,
    linear_shapes,
    load_lora_tensors,
    scan_styles,
)
from engine.tiny import ensure_tiny_loras, ensure_tiny_model

log = logging.getLogger(__name__)

_LN3 = math.log(3.0)
# The schedule 4-step distilled Qwen-Image LoRAs were trained with: a fixed shift of 3
# (base_shift == max_shift, so mu = ln 3 whatever the image size).
TURBO_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "use_dynamic_shifting": True,
    "time_shift_type": "exponential",
    "base_shift": _LN3,
    "max_shift": _LN3,
    "shift": 1.0,
    "shift_terminal": None,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
}


class EngineUnavailable(TurbobotError):
    """The model or the Turbo LoRA cannot be loaded; the message says what to do."""


def turbo_scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(**TURBO_SCHEDULER)  # type: ignore[no-untyped-call]


def load_engine(settings: Settings) -> Engine:
    """Everything a generation needs, placed on the device by the memory profile."""
    memory.set_alloc_conf()  # before anything touches CUDA
    pipe = load_pipeline(model_source(settings))
    linears = linear_shapes(pipe.transformer)
    lora_dir = settings.resolved_lora_dir
    if settings.is_tiny:
        ensure_tiny_loras(lora_dir, linears)
    has_turbo = load_turbo(pipe, turbo_path(settings), linears, tiny=settings.is_tiny)
    styles = StyleLibrary(lora_dir, linears, settings.max_resident_styles)
    styles.rescan(pipe)
    profile = memory.choose_profile(
        settings.memory_profile, cuda=_cuda(settings), free_vram_gb=memory.cuda_free_gb()
    )
    memory.apply_profile(pipe, profile, compile_blocks=settings.compile)
    return Engine(
        pipe=pipe,
        base_scheduler=pipe.scheduler,
        turbo_scheduler=turbo_scheduler(),
        has_turbo=has_turbo,
        styles=styles,
        profile=profile,
        max_side=settings.tiny_side if settings.is_tiny else None,
    )


def model_source(settings: Settings) -> str:
    if settings.is_tiny:
        log.warning(
            "TURBOBOT_MODEL=tiny: using the tiny offline model. It draws NOISE, not pictures; "
            "set TURBOBOT_MODEL to a Qwen-Image-2512 diffusers folder for real images."
        )
        return str(ensure_tiny_model(settings.data_dir / "tiny"))
    return settings.model.strip()


def load_pipeline(source: str) -> Any:
    """The same call for real and tiny weights: bf16, local files only, never the network."""
    import torch
    from diffusers import QwenImagePipeline

    try:
        pipe = QwenImagePipeline.from_pretrained(  # type: ignore[no-untyped-call]
            source, dtype=torch.bfloat16, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(
            f"Model {source!r} not found locally; download it with "
            f"`hf download Qwen/Qwen-Image-2512` (or point TURBOBOT_MODEL at a diffusers folder). "
            f"({type(exc).__name__})"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    _quiet_embeds_warning()
    return pipe


class _DropEmbedsMaskWarning(logging.Filter):
    """We pass ``prompt_embeds`` without a mask on purpose: ``encode_prompt`` returns None when
    no token is padding. diffusers warns about that on every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "prompt_embeds_mask` is not provided" not in record.getMessage()


def _quiet_embeds_warning() -> None:
    logger = logging.getLogger("diffusers.pipelines.qwenimage.pipeline_qwenimage")
    if not any(isinstance(f, _DropEmbedsMaskWarning) for f in logger.filters):
        logger.addFilter(_DropEmbedsMaskWarning())


def turbo_path(settings: Settings) -> Path | None:
    """The Turbo LoRA to load; None in base mode (``TURBOBOT_TURBO_LORA=none``).

    The same rules as the start-up check (:func:`bot.preflight.resolve_turbo`): missing or
    several candidates is an error, never a silent fallback.
    """
    path, problem = resolve_turbo(settings)
    if problem is not None:
        raise EngineUnavailable(str(problem))
    return path


def load_turbo(
    pipe: Any, path: Path | None, linears: dict[str, tuple[int, int]], *, tiny: bool
) -> bool:
    """Load the Turbo LoRA as the always-on adapter; False in base mode (``path`` None)."""
    if path is None:
        log.warning(
            "TURBOBOT_TURBO_LORA=none: base mode, the base model with its own scheduler at "
            "%d-%d steps (default %d); images take several times longer than with Turbo.",
            BASE_STEPS.low,
            BASE_STEPS.high,
            BASE_STEPS.default,
        )
        return False
    try:
        pipe.load_lora_weights(load_lora_tensors(path, linears), adapter_name=TURBO_ADAPTER)
    except LoraRefused as exc:
        raise EngineUnavailable(f"Turbo LoRA refused: {exc}") from None
    log.info("Turbo LoRA %s loaded%s", path.name, " (tiny demo)" if tiny else "")
    return True


def _cuda(settings: Settings) -> bool:
    import torch

    return settings.device != "cpu" and torch.cuda.is_available()


def scan_configured_styles(settings: Settings) -> tuple[dict[str, Style], dict[str, str]]:
    """Installed and refused styles, checked against the model's shapes without loading weights."""
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    source = model_source(settings)
    try:
        config = QwenImageTransformer2DModel.load_config(
            source, subfolder="transformer", local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(
            f"Model {source!r} not found locally ({type(exc).__name__})."
        ) from exc
    with init_empty_weights():  # shapes only: meta tensors, no memory
        skeleton = QwenImageTransformer2DModel.from_config(config)  # type: ignore[no-untyped-call]
        linears = linear_shapes(skeleton)
    if settings.is_tiny:
        ensure_tiny_loras(settings.resolved_lora_dir, linears)
    return scan_styles(settings.resolved_lora_dir, linears)
