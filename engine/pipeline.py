"""One generation, top to bottom like a diffusers pipeline.

check the spec (read the input image of an img2img job) → apply the style's prompt text → set
adapters and scheduler → encode the prompt → denoise the n images in as few batches as memory
allows (text-to-image, or img2img on the same modules) → decode each with a NaN/black guard.
Runs on the executor's single GPU thread; nothing here is async.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from bot import validation
from bot.domain import (
    BASE_STEPS,
    TURBO_STEPS,
    GenerationSpec,
    JobKind,
    StepRange,
    Timings,
)
from bot.errors import BadRequest, GenerationFailed, UnknownStyle
from bot.i18n import msg
from bot.ports import ProgressCallback
from engine import activations, plan
from engine.img2img import (
    encode_image,
    img2img_pipe,
    read_init_image,
    scale_size,
    strength_of,
    strength_sigmas,
    strength_steps,
    upscale_size,
)
from engine.memory import cuda_free_gb, synchronize
from engine.plan import Profile
from engine.style_library import StyleLibrary
from engine.styles import Style

if TYPE_CHECKING:
    from engine.vlm import VlmFeatures

log = logging.getLogger(__name__)

MAX_SEQUENCE_LENGTH = 512  # the pipeline's own default; longer prompts are cut by the encoder
SIZE_MULTIPLE = 16  # 8x VAE and 2x2 patches
_BLACK = -1.0 + 4.0 / 255.0  # decoded images live in [-1, 1]; below this everywhere is black


@dataclass(slots=True)
class Engine:
    """The loaded model and what goes with it. Owned and mutated by the GPU thread only."""

    pipe: Any
    base_scheduler: Any
    turbo_scheduler: Any
    has_turbo: bool
    styles: StyleLibrary
    profile: Profile
    max_side: int | None = None  # the tiny model renders smaller than the aspect asks
    turbo_steps: int = 4  # what the Turbo LoRA was distilled for (turbo.toml)
    vlm: VlmFeatures | None = None  # None: the VLM features are off (TURBOBOT_VLM=0)
    vlm_processor: Any = None  # the Qwen2-VL image processor (describe, safety check)
    data_dir: Path | None = None  # input images (img2img) are read from inside it
    img2img: Any = None  # QwenImageImg2ImgPipeline sharing pipe's modules (engine.img2img)
    _warned_sizes: set[tuple[int, int]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The ``n`` images of one job, in seed order (image k: seed + k), and the timings."""

    images: tuple[Image.Image, ...]
    timings: Timings

    @property
    def image(self) -> Image.Image:
        return self.images[0]


def render(
    engine: Engine, spec: GenerationSpec, on_progress: ProgressCallback, *, turbo: bool = True
) -> Rendered:
    """Make the ``spec.n`` images of ``spec``. ``turbo=False`` runs the base model (tests)."""
    pipe = engine.pipe
    # 1. check inputs (and read the input image of an img2img job)
    style = check_spec(spec, engine.styles, TURBO_STEPS if engine.has_turbo else BASE_STEPS)
    width, height = render_size(engine, spec)
    check_size(width, height)
    init = None
    if spec.init_image is not None:
        init = read_init_image(engine.data_dir, spec.init_image, (width, height))
    # 2. the style's prompt text
    prompt = style.apply_to(spec.prompt) if style else spec.prompt
    # 3. adapters (Turbo always, the style stacked on it) and the schedule Turbo was trained with;
    #    the img2img pipeline shares the modules (so the adapters) but has its own scheduler slot
    use_turbo = turbo and engine.has_turbo
    engine.styles.activate(pipe, style, turbo=use_turbo)
    pipe.scheduler = engine.turbo_scheduler if use_turbo else engine.base_scheduler
    # 4. encode the prompt (and the negative one, only when CFG is on)
    t0 = _now()
    embeds, mask = _encode(pipe, prompt)
    neg_embeds, neg_mask = (None, None)
    if spec.cfg > 1.0:
        neg_embeds, neg_mask = _encode(pipe, spec.negative_prompt or " ")
    # 5. denoise, as few batches as memory allows; image k gets seed + k in any batching
    t1 = _now()
    batches = split_seeds(spec.seeds, batch_sizes_for(engine, spec.n, width, height))
    steps = spec.steps if init is None else strength_steps(spec.steps, strength_of(spec))
    clock = _StepClock(on_progress, steps * len(batches), t1)
    common = {
        "prompt_embeds": embeds,
        "prompt_embeds_mask": mask,
        "negative_prompt_embeds": neg_embeds,
        "negative_prompt_embeds_mask": neg_mask,
        "true_cfg_scale": spec.cfg,
        "height": height,
        "width": width,
        "num_inference_steps": spec.steps,
        "output_type": "latent",
        "callback_on_step_end": clock,
    }
    if init is not None:
        common |= _img2img_args(engine, spec, init)
    runner = pipe if init is None else img2img_pipe(engine)
    runner.scheduler = pipe.scheduler
    latents = [
        runner(
            num_images_per_prompt=len(seeds),
            generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
            **common,
        ).images
        for seeds in batches
    ]
    # 6. decode each image, never handing a NaN or all-black image to a user
    t2 = _now()
    images = tuple(
        _decode_one(pipe, batch[k : k + 1], width, height)
        for batch in latents
        for k in range(batch.shape[0])
    )
    t3 = _now()
    timings = Timings(
        text_encode_ms=(t1 - t0) * 1e3,
        denoise_ms=(t2 - t1) * 1e3,
        decode_ms=(t3 - t2) * 1e3,
        step_ms=clock.step_ms(),
    )
    return Rendered(images=images, timings=timings)


def _img2img_args(engine: Engine, spec: GenerationSpec, init: Image.Image) -> dict[str, Any]:
    """The input image and the strength rule of :mod:`engine.img2img` (custom sigmas)."""
    sigmas = strength_sigmas(spec.steps, strength_of(spec))
    latents = encode_image(engine.pipe, init)
    return {"image": latents, "strength": 1.0, "sigmas": sigmas, "num_inference_steps": len(sigmas)}


def _decode_one(pipe: Any, latents: torch.Tensor, width: int, height: int) -> Image.Image:
    decoded = decode_checked(lambda dtype: decode_latents(pipe, latents, width, height, dtype))
    image: Image.Image = pipe.image_processor.postprocess(decoded, output_type="pil")[0]
    return image


def split_seeds(seeds: tuple[int, ...], sizes: list[int]) -> list[tuple[int, ...]]:
    """``seeds`` cut into consecutive batches of ``sizes``."""
    out, i = [], 0
    for size in sizes:
        out.append(seeds[i : i + size])
        i += size
    return out


def batch_sizes_for(engine: Engine, n: int, width: int, height: int) -> list[int]:
    """Batches for ``n`` images from the memory plan's activations per image and free VRAM."""
    if n == 1 or engine.profile == "cpu":
        # A CPU is busy with one image already: a batch of 4 at 256² measured 1.19x four
        # singles on 2 cores (BENCHMARKS.md); a GPU fills up with the batch instead.
        return [1] * n
    cfg = engine.pipe.transformer.config
    hidden = int(cfg.num_attention_heads) * int(cfg.attention_head_dim)
    tokens = (width // SIZE_MULTIPLE) * (height // SIZE_MULTIPLE)
    per_image = activations.activations_per_image(hidden, 4 * hidden, tokens, plan.TEXT_TOKENS)
    free = int(cuda_free_gb() * plan.GIB)
    return activations.batch_sizes(n, per_image, free, int(plan.MARGIN_GIB * plan.GIB))


# ---------------------------------------------------------------- checks


def check_spec(
    spec: GenerationSpec, styles: StyleLibrary, steps: StepRange = TURBO_STEPS
) -> Style | None:
    """The engine checks its own input too (same rules and words as the core), then the style."""
    validation.check_spec(spec, steps)
    if spec.style is None:
        return None
    style = styles.styles.get(spec.style)
    if style is None:
        raise UnknownStyle(spec.style, sorted(styles.styles))
    return style


def check_size(width: int, height: int) -> None:
    """Refuse sizes the pipeline would silently round down."""
    if width <= 0 or height <= 0 or width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        raise BadRequest(msg("engine.bad_size", width=width, height=height))


def render_size(engine: Engine, spec: GenerationSpec) -> tuple[int, int]:
    """The spec's size (an upscale's: larger, see :func:`engine.img2img.upscale_size`), or
    for the tiny model a proportional size whose long side is max_side (an upscale's larger by
    the same factor as on the real model)."""
    w, h = spec.width, spec.height
    if spec.kind is JobKind.UPSCALE:
        big = upscale_size(w, h)
        small = _tiny_size(engine, w, h)
        return big if small == (w, h) else scale_size(*small, big[0] / w)
    return _tiny_size(engine, w, h)


def _tiny_size(engine: Engine, w: int, h: int) -> tuple[int, int]:
    if engine.max_side is None or max(w, h) <= engine.max_side:
        return w, h
    scale = engine.max_side / max(w, h)
    size = (_down16(w * scale), _down16(h * scale))
    if (w, h) not in engine._warned_sizes:
        engine._warned_sizes.add((w, h))
        log.info("Tiny model: rendering %dx%d as %dx%d (TURBOBOT_TINY_SIDE)", w, h, *size)
    return size


def _down16(x: float) -> int:
    return max(SIZE_MULTIPLE, int(x) // SIZE_MULTIPLE * SIZE_MULTIPLE)


# ---------------------------------------------------------------- stages


def _now() -> float:
    """A stage boundary: wait for the GPU first, or a time would only count kernel launches."""
    synchronize()
    return perf_counter()


def _encode(pipe: Any, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(
            prompt, device=pipe._execution_device, max_sequence_length=MAX_SEQUENCE_LENGTH
        )
    return embeds, mask


class _StepClock:
    """``callback_on_step_end``: forwards progress and records when each step ended."""

    def __init__(self, on_progress: ProgressCallback, total: int, start: float) -> None:
        self._on_progress = on_progress
        self._total = total
        self._marks = [start]

    def __call__(self, pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._marks.append(_now())
        self._on_progress(len(self._marks) - 1, self._total)  # counts on across batches
        return {}

    def step_ms(self) -> tuple[float, ...]:
        return tuple((b - a) * 1e3 for a, b in zip(self._marks, self._marks[1:], strict=False))


def decode_latents(
    pipe: Any, latents: torch.Tensor, width: int, height: int, dtype: torch.dtype
) -> torch.Tensor:
    """The pipeline's own decode (unpack, un-normalise, VAE), in ``dtype``; image in [-1, 1]."""
    vae = pipe.vae
    old = vae.dtype
    if dtype != old:  # only the fp32 retry casts (and casts back afterwards)
        vae.to(dtype)
    try:
        with torch.no_grad():
            z = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor).to(dtype)
            shape = (1, vae.config.z_dim, 1, 1, 1)
            mean = torch.tensor(vae.config.latents_mean).view(shape).to(z.device, z.dtype)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(z.device, z.dtype)
            image: torch.Tensor = vae.decode(z / inv_std + mean, return_dict=False)[0][:, :, 0]
    finally:
        if dtype != old:
            vae.to(old)
    return image


def decode_checked(decode: Callable[[torch.dtype], torch.Tensor]) -> torch.Tensor:
    """Decode in bf16; on NaN/inf or an all-black image retry once in fp32, then give up."""
    image = decode(torch.bfloat16)
    if usable(image):
        return image
    log.warning("Decoded image is black or not finite; retrying the decode in float32")
    image = decode(torch.float32)
    if usable(image):
        return image
    raise GenerationFailed(msg("engine.black_image"))


def usable(image: torch.Tensor) -> bool:
    return bool(torch.isfinite(image).all()) and float(image.float().max()) > _BLACK
