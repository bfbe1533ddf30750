"""Image input checks (bot/images.py): formats, sizes, bombs, orientation, aspect."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.domain import ASPECTS, MAX_INPUT_BYTES
from bot.errors import BadRequest
from bot.images import check_size, decode, nearest_aspect, read_image

LIMITS = {"max_bytes": 2_000_000, "max_pixels": 4_000_000}


def encoded(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels in a few dozen bytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_three_formats_decode_to_rgb(fmt: str) -> None:
    image = decode(encoded(Image.new("RGB", (120, 80), (200, 10, 10)), fmt), **LIMITS)
    assert image.mode == "RGB"
    assert image.size == (120, 80)
    red, green, _ = image.getpixel((60, 40))  # type: ignore[misc]
    assert red > 150 > green


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_refused_by_name(fmt: str) -> None:
    with pytest.raises(BadRequest, match="JPEG, PNG or WebP"):
        decode(encoded(Image.new("RGB", (100, 100)), fmt), **LIMITS)


def test_a_file_over_the_byte_limit_is_refused_before_decoding() -> None:
    with pytest.raises(BadRequest, match=r"limit is 1 MiB"):
        decode(b"\xff" * (2**20 + 1), max_bytes=2**20, max_pixels=10**6)


def test_an_announced_size_over_the_cap_is_refused_before_any_download() -> None:
    check_size(MAX_INPUT_BYTES)  # the cap itself is allowed
    with pytest.raises(BadRequest) as caught:
        check_size(MAX_INPUT_BYTES + 1)
    assert caught.value.key == "core.image_too_large"


@pytest.mark.parametrize("side", [3_000, 50_000])  # over our limit; over Pillow's too
def test_a_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    bomb = png_header_only(side, side)  # up to 2.5 gigapixels in < 100 bytes
    assert len(bomb) < 200
    with pytest.raises(BadRequest, match="too many pixels"):
        decode(bomb, **LIMITS)


def test_pillows_own_bomb_guard_is_an_error_not_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # our limit higher than Pillow's
    data = encoded(Image.new("RGB", (100, 80)), "PNG")
    with pytest.raises(BadRequest, match="too many pixels"):
        decode(data, max_bytes=10**6, max_pixels=10**6)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a supported image"),
        (encoded(Image.new("RGB", (300, 300)), "JPEG")[:200], "could not be read"),
        (encoded(Image.new("RGB", (32, 300)), "PNG"), "at least 64"),
    ],
)
def test_broken_empty_and_tiny_files_get_a_clear_message(data: bytes, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        decode(data, **LIMITS)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    data = encoded(Image.new("RGB", (160, 90)), "JPEG", exif=exif.tobytes())
    assert decode(data, **LIMITS).size == (90, 160)


def test_transparency_becomes_white_not_black() -> None:
    data = encoded(Image.new("RGBA", (100, 100), (0, 0, 0, 0)), "PNG")
    assert decode(data, **LIMITS).getpixel((50, 50)) == (255, 255, 255)


def test_the_nearest_aspect_is_chosen_and_the_image_fitted_to_it() -> None:
    assert nearest_aspect(1920, 1080).name == "16:9"
    assert nearest_aspect(1000, 1010).name == "1:1"
    assert nearest_aspect(600, 900).name == "2:3"
    assert nearest_aspect(100, 1000).name == "9:16"  # the most extreme one supported
    got = read_image(encoded(Image.new("RGB", (1920, 1080)), "JPEG"), **LIMITS)
    assert got.aspect == ASPECTS["16:9"]
    assert got.image.size == (1360, 768)


def test_an_announced_size_over_the_limit_is_refused_before_any_download() -> None:
    # Adapters pass the size a platform announces (a Discord attachment's ``size``).
    check_size(MAX_INPUT_BYTES)  # at the limit: fine
    with pytest.raises(BadRequest) as err:
        check_size(MAX_INPUT_BYTES + 1)
    assert err.value.key == "core.image_too_large"
