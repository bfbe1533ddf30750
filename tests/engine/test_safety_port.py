"""The safety check through the core's port (``Executor.check_image``) on the tiny model: the
engine's verdict as the core's :class:`~bot.domain.ImageVerdict`, and None without the VLM."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO

from PIL import Image

from engine import vlm
from engine.executors import LocalExecutor
from engine.pipeline import Engine

POLICY = "No gore, no nudity."


def jpeg(image: Image.Image) -> bytes:
    buf = BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


async def test_check_image_turns_the_margin_into_a_verdict(engine: Engine) -> None:
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    executor = LocalExecutor(engine, jpeg_quality=90)
    try:
        verdict = await executor.check_image(7, jpeg(image), POLICY)
    finally:
        await executor.aclose()
    expected = vlm.safety_check(engine, Image.open(BytesIO(jpeg(image))), POLICY)
    assert verdict is not None
    assert verdict.score == expected.raw
    assert verdict.flagged is (expected.label == "unsafe")
    assert verdict.policy == POLICY


async def test_check_image_is_none_when_the_model_cannot_check(engine: Engine) -> None:
    executor = LocalExecutor(engine, jpeg_quality=90)
    saved = engine.vlm
    try:
        engine.vlm = None  # TURBOBOT_VLM=0
        assert await executor.check_image(1, b"not even read", POLICY) is None
        assert saved is not None
        engine.vlm = replace(saved, safety=False)  # a checkpoint without the vision tower
        assert await executor.check_image(2, b"not even read", POLICY) is None
    finally:
        engine.vlm = saved
        await executor.aclose()
