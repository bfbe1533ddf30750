"""Load the pipeline (real weights or the tiny offline model), the Turbo LoRA and the styles.

Order matters: allocator settings before CUDA starts; LoRAs (Turbo, the style slot) before the
memory profile, so compile sees the final module tree and fp8 storage skips the LoRA layers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bot.domain import BASE_STEPS
from bot.errors import TurbobotError
from bot.preflight import resolve_turbo
from bot.slices import EngineSettings
from engine import memory, synthetic
from engine.pipeline import Engine
from engine.schedule import TurboSchedule, read_schedule
from engine.style_library import StyleLibrary, load_adapter
from engine.styles import (
    TURBO_ADAPTER,
    LoraRefused,
    Style,
    linear_shapes,
    load_lora_tensors,
    scan_styles,
)
from engine.tiny import ensure_tiny_loras, ensure_tiny_model
from engine.vlm import VlmFeatures, build_processor, check_loaded, inspect_model_folder

log = logging.getLogger(__name__)


class EngineUnavailable(TurbobotError):
    """The model or the Turbo LoRA cannot be loaded; the message says what to do."""


def turbo_scheduler(schedule: TurboSchedule | None = None) -> Any:
    """The scheduler the Turbo LoRA was distilled with (default: the Wuli-Art recipe)."""
    return (schedule or TurboSchedule()).scheduler()


def load_engine(settings: EngineSettings, *, compile_backend: str | None = None) -> Engine:
    """Everything a generation needs, placed on the device by the memory profile."""
    memory.set_alloc_conf()  # before anything touches CUDA
    source: str | None = None  # the synthetic model has no checkpoint folder
    if settings.is_synthetic:
        pipe = build_synthetic(settings)
    else:
        source = model_source(settings)
        pipe = load_pipeline(source)
    linears = linear_shapes(pipe.transformer)
    lora_dir = settings.resolved_lora_dir
    ensure_demo_loras(settings, linears)
    path = turbo_path(settings)
    schedule = read_schedule(path.parent if path else None)
    turbo_bytes = load_turbo(pipe, path, linears, tiny=settings.is_tiny)
    styles = StyleLibrary(lora_dir, linears, settings.max_resident_styles)
    styles.rescan(pipe)
    styles.prepare_slot(pipe)
    profile = memory.choose_profile(
        settings.memory_profile,
        cuda=_cuda(settings),
        free_vram_gb=memory.cuda_free_gb(),
        loras_bytes=turbo_bytes + styles.slot_bytes(),
        resident_styles_bytes=styles.cache_bytes_max(),
        vlm=settings.vlm,
    )
    # The VLM features read the checkpoint's files; the synthetic model has none to read.
    vlm_source = source if settings.vlm else None
    features, processor = load_vlm(pipe, vlm_source) if vlm_source else (None, None)
    memory.apply_profile(
        pipe,
        profile,
        compile_blocks=settings.compile,
        compile_backend=compile_backend,
        keep_vlm=settings.vlm,
    )
    log.info("Turbo schedule: %s, %d steps", schedule.source, schedule.steps)
    return Engine(
        pipe=pipe,
        base_scheduler=pipe.scheduler,
        turbo_scheduler=schedule.scheduler(),
        has_turbo=turbo_bytes > 0,
        styles=styles,
        profile=profile,
        max_side=settings.tiny_side if settings.is_tiny else None,
        data_dir=settings.data_dir,
        turbo_steps=schedule.steps,
        vlm=features,
        vlm_processor=processor,
    )


def load_vlm(pipe: Any, source: str) -> tuple[VlmFeatures, Any]:
    """Which VLM features the checkpoint supports (before a profile can drop anything), and the
    image processor when a vision feature is available."""
    folder = model_folder(source)
    features = check_loaded(pipe, folder)
    processor = None
    if features.describe or features.safety:
        processor = build_processor(folder, pipe.text_encoder.config.vision_config)
    return features, processor


def inspect_vlm(settings: EngineSettings) -> VlmFeatures:
    """For ``turbobot doctor``: the VLM features the configured model's files allow, read from
    configs and safetensors headers only (no weights, no GPU)."""
    try:
        folder = model_folder(model_source(settings))
    except (OSError, ValueError) as exc:
        folder = Path(settings.model)  # reported as unreadable below
        log.debug("model folder not found: %s", exc)
    return inspect_model_folder(folder)


def model_folder(source: str) -> Path:
    """The local folder of ``source`` (a folder, or a model id already in the hub cache)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, local_files_only=True))


def model_source(settings: EngineSettings) -> str:
    if settings.is_tiny:
        log.warning(
            "TURBOBOT_MODEL=tiny: using the tiny offline model. It draws NOISE, not pictures; "
            "set TURBOBOT_MODEL to a Qwen-Image-2512 diffusers folder for real images."
        )
        return str(ensure_tiny_model(settings.data_dir / "tiny"))
    return settings.model.strip()


def build_synthetic(settings: EngineSettings) -> Any:
    """The real-size random model, each component created where its profile will keep it."""
    from engine import plan

    log.warning(synthetic.WARNING)
    profile = memory.choose_profile(
        settings.memory_profile,
        cuda=_cuda(settings),
        free_vram_gb=memory.cuda_free_gb(),
        loras_bytes=plan.TURBO_BYTES + plan.STYLE_BYTES,  # the synthetic files' sizes
        resident_styles_bytes=2 * plan.STYLE_BYTES,
    )
    pipe = synthetic.build_pipeline(settings.synthetic_layers, device=synthetic.placement(profile))
    _quiet_embeds_warning()
    return pipe


def ensure_demo_loras(settings: EngineSettings, linears: dict[str, tuple[int, int]]) -> None:
    """The tiny and synthetic models bring their own Turbo LoRA and styles."""
    if settings.is_tiny:
        ensure_tiny_loras(settings.resolved_lora_dir, linears)
    elif settings.is_synthetic:
        synthetic.ensure_synthetic_loras(settings.resolved_lora_dir, linears)


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


def turbo_path(settings: EngineSettings) -> Path | None:
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
) -> int:
    """Load the Turbo LoRA as the always-on adapter; its size in bytes (0 in base mode, ``path``
    None).

    It goes through the same normaliser and checks as every style; a refusal is one line.
    """
    if path is None:
        log.warning(
            "TURBOBOT_TURBO_LORA=none: base mode, the base model with its own scheduler at "
            "%d-%d steps (default %d); images take several times longer than with Turbo.",
            BASE_STEPS.low,
            BASE_STEPS.high,
            BASE_STEPS.default,
        )
        return 0
    try:
        canonical = load_lora_tensors(path, linears)
        load_adapter(pipe, canonical, TURBO_ADAPTER, path.name)
    except (LoraRefused, OSError) as exc:
        raise EngineUnavailable(f"Turbo LoRA refused: {exc}") from None
    log.info("Turbo LoRA %s loaded%s", path.name, " (tiny demo)" if tiny else "")
    return sum(t.numel() * 2 for t in canonical.values())  # held in bf16


def _cuda(settings: EngineSettings) -> bool:
    import torch

    return settings.device != "cpu" and torch.cuda.is_available()


def scan_configured_styles(settings: EngineSettings) -> tuple[dict[str, Style], dict[str, str]]:
    """Installed and refused styles, checked against the model's shapes without loading weights."""
    linears = linear_shapes(meta_transformer(settings))
    ensure_demo_loras(settings, linears)
    return scan_styles(settings.resolved_lora_dir, linears)


def meta_transformer(settings: EngineSettings) -> Any:
    """The configured model's transformer on ``meta``: module names and shapes, no memory."""
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    if settings.is_synthetic:
        config = synthetic.configs(settings.synthetic_layers).transformer
    else:
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
        return QwenImageTransformer2DModel.from_config(config)  # type: ignore[no-untyped-call]
