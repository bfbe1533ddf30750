"""img2img (vary, remix, upscale, image input) on the loaded model: no second copy, no reload.

``QwenImageImg2ImgPipeline`` is built around the SAME module objects (transformer, VAE, text
encoder, tokenizer, scheduler): memory profiles, compile and the style slot applied to them
apply to both pipelines. It is built once and kept on the engine. Not with ``from_pipe``:
diffusers 0.42.1's ``from_pipe`` ends with ``new_pipeline.to(dtype=dtype)``, dtype defaulting
to float32, which casts the shared modules (a 20B bf16 transformer becomes 76 GiB of fp32; with
``dtype=bfloat16`` it would still turn the ``low`` profile's fp8 storage back into bf16 and
meet the group-offloaded text encoder). The constructor with ``pipe.components`` is what
``from_pipe`` does before that cast (tests/engine/test_img2img.py checks both).

Strength on the Turbo schedule. The diffusers pipeline's own rule runs the last
``N - int(N - N*strength)`` of N steps, starting at that step's *shifted* sigma: with 4 Turbo
steps (sigmas 1, .882, .714, .455) strength 0.35 would start at sigma .714 and strength 0.25 at
.455; strengths only ever pick one of four points. Our rule instead (:func:`strength_sigmas`):
strength ``s`` is the fraction of the Turbo schedule's time run again: the input is noised to
the Turbo curve's sigma at ``t = s`` and denoised in ``ceil(steps * s)`` steps (at least one)
evenly spaced in ``t`` down to 0, on the same curve (passed as custom ``sigmas`` with
``strength=1``: the scheduler shifts them by its fixed mu). ``s = 1`` is exactly text-to-image's
schedule; 4 steps at 0.35 run 2 steps from sigma .574 (Wuli-Art mu); at 0.7, 3 steps from .854.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps

from bot.domain import (
    DEFAULT_IMG2IMG_STRENGTH,
    MAX_INPUT_BYTES,
    UPSCALE_LONG_SIDE,
    UPSCALE_SUBTLE,
    VARY_SUBTLE,
    GenerationSpec,
    JobKind,
)
from bot.errors import BadRequest
from bot.i18n import msg
from bot.images import decode

if TYPE_CHECKING:
    from engine.pipeline import Engine

SIZE_MULTIPLE = 16
DEFAULT_STRENGTH: dict[JobKind, float] = {
    JobKind.VARY: VARY_SUBTLE,
    JobKind.REMIX: DEFAULT_IMG2IMG_STRENGTH,
    JobKind.IMG2IMG: DEFAULT_IMG2IMG_STRENGTH,
    JobKind.UPSCALE: UPSCALE_SUBTLE,
}
# Pixels an input file may have: a parent (1 MP) or an upload checked by the core (~1 MP);
# the engine checks again, as it does every spec.
MAX_FILE_PIXELS = 4 * UPSCALE_LONG_SIDE * UPSCALE_LONG_SIDE


def img2img_pipe(engine: Engine) -> Any:
    """The img2img pipeline sharing ``engine.pipe``'s modules, built on first use."""
    if engine.img2img is None:
        from diffusers import QwenImageImg2ImgPipeline

        engine.img2img = QwenImageImg2ImgPipeline(**engine.pipe.components)  # type: ignore[no-untyped-call]
        engine.img2img.set_progress_bar_config(disable=True)
        # encode_prompt returns no mask when every token is valid; img2img's check_inputs then
        # warns on every call that "the model will treat all prompt tokens as valid": it should.
        logging.getLogger(QwenImageImg2ImgPipeline.__module__).setLevel(logging.ERROR)
    return engine.img2img


def encode_image(pipe: Any, image: Image.Image) -> torch.Tensor:
    """The input image as normalised latents ``[1, z, h, w]``, encoded once per job.

    The VAE's mean, not a sample: the pipeline would draw the sample from the first image's
    generator only, so image k of a batch would differ from the one-image job with seed s + k.
    The pipeline takes these latents as they are (16 channels: no preprocessing, no encode)."""
    vae = pipe.vae
    pixels = pipe.image_processor.preprocess(image, height=image.height, width=image.width)
    pixels = pixels.to(pipe._execution_device, vae.dtype).unsqueeze(2)
    shape = (1, vae.config.z_dim, 1, 1, 1)
    with torch.no_grad():
        z = vae.encode(pixels).latent_dist.mode()
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(z.device, z.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(z.device, z.dtype)
    latents: torch.Tensor = ((z - mean) * inv_std)[:, :, 0]
    return latents


def strength_of(spec: GenerationSpec) -> float:
    return spec.strength if spec.strength is not None else DEFAULT_STRENGTH[spec.kind]


def strength_steps(steps: int, strength: float) -> int:
    """Steps an img2img job runs: ``ceil(steps * strength)``, at least one."""
    return max(1, math.ceil(steps * strength - 1e-9))


def strength_sigmas(steps: int, strength: float) -> list[float]:
    """Unshifted sigmas from ``strength`` down, ``strength_steps`` of them (see the module)."""
    k = strength_steps(steps, strength)
    return [float(x) for x in np.linspace(strength, strength / k, k)]


def upscale_size(width: int, height: int) -> tuple[int, int]:
    """``width x height`` scaled so the long side is UPSCALE_LONG_SIDE, multiples of 16."""
    return scale_size(width, height, UPSCALE_LONG_SIDE / max(width, height))


def scale_size(width: int, height: int, factor: float) -> tuple[int, int]:
    return _down16(width * factor), _down16(height * factor)


def _down16(x: float) -> int:
    return max(SIZE_MULTIPLE, round(x) // SIZE_MULTIPLE * SIZE_MULTIPLE)


def read_init_image(data_dir: Path | None, relative: str, size: tuple[int, int]) -> Image.Image:
    """The spec's input image, from inside the data dir, checked, at the render size."""
    path = _inside(data_dir, relative)
    try:
        data = path.read_bytes()
    except OSError:
        raise BadRequest(msg("engine.input_gone")) from None
    image = decode(data, max_bytes=MAX_INPUT_BYTES, max_pixels=MAX_FILE_PIXELS)
    if image.size == size:
        return image
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)


def _inside(data_dir: Path | None, relative: str) -> Path:
    if data_dir is None:
        raise BadRequest(msg("engine.no_data_folder"))
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise BadRequest(msg("engine.input_outside"))
    return path
