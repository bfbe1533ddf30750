"""What users may ask for: prompt length, steps, seeds, CFG, images per prompt, img2img
strengths, input files and output sizes. Re-exported by :mod:`bot.domain`."""

from __future__ import annotations

__all__ = [
    "ASPECTS",
    "BASE_STEPS",
    "DEFAULT_ASPECT",
    "DEFAULT_IMG2IMG_STRENGTH",
    "DEFAULT_STEPS",
    "INPUT_FORMATS",
    "MAX_CFG",
    "MAX_IMAGES",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_PIXELS",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_STRENGTH",
    "MIN_CFG",
    "MIN_IMAGES",
    "MIN_STEPS",
    "MIN_STRENGTH",
    "TURBO_STEPS",
    "UPSCALE_CREATIVE",
    "UPSCALE_LONG_SIDE",
    "UPSCALE_SUBTLE",
    "VARY_STRONG",
    "VARY_SUBTLE",
    "Aspect",
    "StepRange",
    "image_seed",
    "upscaled_size",
]

from dataclasses import dataclass

# Limits users meet. Qwen-Image's text encoder takes long prompts, but a chat prompt longer than
# this is almost always a paste accident; Discord's own option limit is 6000 characters.
MAX_PROMPT_CHARS = 2000
MIN_STEPS = 1
MAX_STEPS = 8
DEFAULT_STEPS = 4
MAX_SEED = 2**32 - 1
MIN_CFG = 1.0
MAX_CFG = 10.0
# Several images per prompt (issue 13): one batched pipeline call where memory allows.
MIN_IMAGES = 1
MAX_IMAGES = 4
# img2img strength: the fraction of the Turbo schedule run again from the input image
# (engine/img2img.py). Below MIN_STRENGTH nothing visible changes; 1.0 ignores the input.
MIN_STRENGTH = 0.05
MAX_STRENGTH = 1.0
VARY_SUBTLE = 0.35
VARY_STRONG = 0.7
UPSCALE_SUBTLE = 0.25
UPSCALE_CREATIVE = 0.5
DEFAULT_IMG2IMG_STRENGTH = 0.6  # remix and image input when the user gives none
UPSCALE_LONG_SIDE = 1536  # the largest long side Qwen-Image handles well (multiple of 16)
# Image input (uploads, and parents read back from disk): checked by bot/images.py.
MAX_INPUT_BYTES = 20 * 2**20
MAX_INPUT_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
INPUT_FORMATS = ("JPEG", "PNG", "WEBP")


@dataclass(frozen=True, slots=True)
class StepRange:
    """Denoising steps users may ask for, and the default. It depends on the model mode."""

    low: int
    high: int
    default: int


# The Turbo LoRA is distilled for 4 (up to 8) steps; the base model needs 30-50 for a clean image.
TURBO_STEPS = StepRange(MIN_STEPS, MAX_STEPS, DEFAULT_STEPS)
BASE_STEPS = StepRange(10, 50, 30)


@dataclass(frozen=True, slots=True)
class Aspect:
    """An output size of about one megapixel; both sides multiples of 16 (the pipeline needs it)."""

    name: str
    width: int
    height: int


# About 1 MP each, both sides multiples of 16 (checked by a test).
ASPECTS: dict[str, Aspect] = {
    a.name: a
    for a in (
        Aspect("1:1", 1024, 1024),
        Aspect("16:9", 1360, 768),
        Aspect("9:16", 768, 1360),
        Aspect("4:3", 1184, 880),
        Aspect("3:4", 880, 1184),
        Aspect("3:2", 1248, 832),
        Aspect("2:3", 832, 1248),
    )
}
DEFAULT_ASPECT = "1:1"


def upscaled_size(width: int, height: int) -> tuple[int, int]:
    """An upscale's size: the long side UPSCALE_LONG_SIDE, both sides multiples of 16
    (the engine's ``engine.img2img.upscale_size`` renders exactly this)."""
    factor = UPSCALE_LONG_SIDE / max(width, height)
    return _down16(width * factor), _down16(height * factor)


def _down16(x: float) -> int:
    return max(16, round(x) // 16 * 16)


def image_seed(seed: int, k: int) -> int:
    """The seed of image ``k`` of a job: ``seed + k``, wrapping inside 0..MAX_SEED."""
    return (seed + k) % (MAX_SEED + 1)
