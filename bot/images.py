"""Image input: bytes from a user (or a parent image read back from disk) made safe to use.

Pillow only (no engine, no torch), so the core checks uploads before a job is committed and the
engine checks the file again when it reads it. Every refusal is a :class:`BadRequest` whose
message says what to change.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.domain import ASPECTS, INPUT_FORMATS, MAX_INPUT_BYTES, MAX_INPUT_PIXELS, Aspect
from bot.errors import BadRequest
from bot.i18n import Message, msg

MIN_INPUT_SIDE = 64  # smaller images carry too little to start a 1 MP picture from
_FORMATS = "JPEG, PNG or WebP"  # INPUT_FORMATS, as people write them


@dataclass(frozen=True, slots=True)
class InputImage:
    """A decoded, upright RGB image cropped and resized to a supported ``aspect``."""

    image: Image.Image
    aspect: Aspect


def read_image(
    data: bytes, *, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS
) -> InputImage:
    """Check and decode ``data``: size in bytes, format, pixel count (before decoding), EXIF
    orientation, RGB (transparency over white), then the nearest supported aspect at ~1 MP."""
    image = decode(data, max_bytes=max_bytes, max_pixels=max_pixels)
    aspect = nearest_aspect(image.width, image.height)
    return InputImage(fit(image, aspect), aspect)


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Upright RGB pixels of a JPEG, PNG or WebP file, or a BadRequest saying why not."""
    check_size(len(data), max_bytes=max_bytes)
    if not data:
        raise BadRequest(msg("core.image_empty"))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: make it an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(INPUT_FORMATS)) as img:
                _check_pixels(img.width, img.height, max_pixels)  # header only: nothing decoded
                img.seek(0)  # the first frame of an animation
                img.load()
                return _upright_rgb(img)
    except BadRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(_too_many_pixels(max_pixels)) from None
    except UnidentifiedImageError:
        raise BadRequest(msg("core.image_format", formats=_FORMATS)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadRequest(msg("core.image_unreadable", error=str(exc))) from None


def check_size(size: int, *, max_bytes: int = MAX_INPUT_BYTES) -> None:
    """Refuse a file of ``size`` bytes over the cap: adapters call it with the size a platform
    announces before they fetch a file (nothing too large is ever downloaded), and
    :func:`decode` with the bytes it got."""
    if size > max_bytes:
        shown, limit = f"{size / 2**20:.1f}", f"{max_bytes / 2**20:.0f}"
        raise BadRequest(msg("core.image_too_large", size=shown, limit=limit))


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise BadRequest(_too_many_pixels(max_pixels))
    if min(width, height) < MIN_INPUT_SIDE:
        size = f"{width}x{height}"
        raise BadRequest(msg("core.image_too_small", size=size, side=MIN_INPUT_SIDE))


def _too_many_pixels(max_pixels: int) -> Message:
    return msg("core.image_too_many_pixels", limit=f"{max_pixels / 1e6:.0f}")


def _upright_rgb(img: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(img)
    if upright.mode in {"RGBA", "LA", "P", "PA"} or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return upright.convert("RGB")


def nearest_aspect(width: int, height: int) -> Aspect:
    """The supported aspect whose ratio is closest (in log scale: 2:1 and 1:2 are as far)."""
    ratio = math.log(width / height)
    return min(ASPECTS.values(), key=lambda a: abs(math.log(a.width / a.height) - ratio))


def fit(image: Image.Image, aspect: Aspect) -> Image.Image:
    """Centre-crop to the aspect's ratio and resize to its size (Lanczos)."""
    size = (aspect.width, aspect.height)
    if image.size == size:
        return image
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
