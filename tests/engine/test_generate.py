"""End-to-end generations on the tiny pipeline through the real executor."""

from __future__ import annotations

import io
import threading

import pytest
import torch
from PIL import Image

from bot.domain import ASPECTS, MAX_PROMPT_CHARS, Generated, GenerationSpec
from bot.errors import BadPrompt, BadRequest, EngineCrashed, GenerationFailed, UnknownStyle
from engine.executors import LocalExecutor
from engine.pipeline import Engine, render, render_size
from tests.engine.conftest import TEST_SIDE, no_progress, spec


async def make(engine: Engine, s: GenerationSpec) -> Generated:
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        return await executor.generate(1, s, no_progress)
    finally:
        await executor.aclose()


def size_of(jpeg: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG"
        return im.size


async def test_same_seed_same_bytes_and_other_seed_differs(engine: Engine) -> None:
    a = await make(engine, spec(seed=11))
    b = await make(engine, spec(seed=11))
    c = await make(engine, spec(seed=12))
    assert a.jpeg == b.jpeg
    assert a.jpeg != c.jpeg


async def test_style_switch_a_b_a_matches_fresh_a(engine: Engine) -> None:
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        fresh_a = await executor.generate(1, spec(style="watercolor"), no_progress)
        b = await executor.generate(2, spec(style="ink"), no_progress)
        a_again = await executor.generate(3, spec(style="watercolor"), no_progress)
        plain = await executor.generate(4, spec(), no_progress)
    finally:
        await executor.aclose()
    assert fresh_a.jpeg == a_again.jpeg
    assert len({fresh_a.jpeg, b.jpeg, plain.jpeg}) == 3


def test_turbo_only_differs_from_base_only(engine: Engine) -> None:
    turbo = render(engine, spec(), no_progress, turbo=True).image.tobytes()
    base = render(engine, spec(), no_progress, turbo=False).image.tobytes()
    turbo_again = render(engine, spec(), no_progress, turbo=True).image.tobytes()
    assert turbo != base
    assert turbo == turbo_again  # switching Turbo off and on again is exact (no fuse/unfuse)


async def test_every_aspect_renders_its_reduced_size(engine: Engine) -> None:
    for name, a in ASPECTS.items():
        g = await make(engine, spec(aspect=name, steps=1))
        w, h = size_of(g.jpeg)
        assert (g.width, g.height) == (w, h)
        assert max(w, h) == TEST_SIDE
        assert w % 16 == 0
        assert h % 16 == 0
        assert (w > h) == (a.width > a.height)


@pytest.mark.parametrize("aspect", ["16:9", "3:4"])
async def test_full_size_aspect_is_exact(engine: Engine, aspect: str) -> None:
    engine.max_side = None  # reduction off: the real model's exact size
    g = await make(engine, spec(aspect=aspect, steps=1))
    assert size_of(g.jpeg) == (ASPECTS[aspect].width, ASPECTS[aspect].height)


def test_render_size_is_proportional_and_off_for_real_models(engine: Engine) -> None:
    engine.max_side = 256
    assert render_size(engine, spec(aspect="16:9")) == (256, 144)
    engine.max_side = None
    assert render_size(engine, spec(aspect="16:9")) == (1360, 768)


@pytest.mark.parametrize(
    "prompt", ["一只在雪地里的红狐狸", "a fox 🦊🔥 in snow", "a\u200bfox\u200d in\ufeff snow"]
)
async def test_unicode_prompts_work(engine: Engine, prompt: str) -> None:
    g = await make(engine, spec(prompt))
    assert size_of(g.jpeg) == (TEST_SIDE, TEST_SIDE)


async def test_different_prompts_give_different_images(engine: Engine) -> None:
    a = await make(engine, spec("一只猫"))
    b = await make(engine, spec("一只狗"))
    assert a.jpeg != b.jpeg


async def test_cfg_with_negative_prompt_changes_the_image(engine: Engine) -> None:
    plain = await make(engine, spec())
    cfg = await make(engine, spec(cfg=3.0, negative_prompt="blurry"))
    assert plain.jpeg != cfg.jpeg


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (spec(""), BadPrompt, "empty"),
        (spec("   \n\t "), BadPrompt, "empty"),
        (spec("\u200b\u200b"), BadPrompt, "empty"),
        (spec("x" * (MAX_PROMPT_CHARS + 1)), BadPrompt, "limit"),
        (spec(steps=0), BadRequest, "Steps"),
        (spec(steps=99), BadRequest, "Steps"),
        (spec(width=1000, height=1000), BadRequest, "not a supported size"),
        (spec(cfg=0.5), BadRequest, "CFG"),
        (spec(seed=-1), BadRequest, "seed must be"),
        (spec(style="nope"), UnknownStyle, "Available styles: ink"),
    ],
)
async def test_bad_input_gives_a_clear_error(
    engine: Engine, bad: GenerationSpec, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        await make(engine, bad)


async def test_progress_arrives_from_the_gpu_thread(engine: Engine) -> None:
    seen: list[tuple[int, int, int]] = []

    def on_progress(step: int, total: int) -> None:
        seen.append((step, total, threading.get_ident()))

    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        g = await executor.generate(1, spec(steps=3), on_progress)
    finally:
        await executor.aclose()
    assert [(s, t) for s, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert {tid for *_, tid in seen} != {threading.get_ident()}
    assert len(g.timings.step_ms) == 3
    assert all(ms > 0 for ms in g.timings.step_ms)
    assert g.timings.jpeg_ms > 0
    assert g.timings.decode_ms > 0
    assert g.timings.text_encode_ms > 0


async def test_two_jobs_in_flight_both_finish_in_order(engine: Engine) -> None:
    import asyncio

    executor = LocalExecutor(engine, jpeg_quality=95)
    assert executor.capacity == 2
    try:
        a, b = await asyncio.gather(
            executor.generate(1, spec(seed=1), no_progress),
            executor.generate(2, spec(seed=2), no_progress),
        )
    finally:
        await executor.aclose()
    assert a.jpeg != b.jpeg
    assert a.jpeg == (await make(engine, spec(seed=1))).jpeg


class OomTimes:
    """A render that runs out of CUDA memory ``times`` times, then renders for real."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    def __call__(self, engine: Engine, s: GenerationSpec, on_progress: object) -> object:
        self.calls += 1
        if self.calls <= self.times:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return render(engine, s, no_progress)


async def test_oom_once_is_retried(engine: Engine) -> None:
    fake = OomTimes(1)
    executor = LocalExecutor(engine, jpeg_quality=95, render_fn=fake)  # type: ignore[arg-type]
    try:
        g = await executor.generate(1, spec(), no_progress)
    finally:
        await executor.aclose()
    assert fake.calls == 2
    assert g.jpeg == (await make(engine, spec())).jpeg


async def test_oom_twice_fails_clearly_and_keeps_serving(engine: Engine) -> None:
    fake = OomTimes(2)
    executor = LocalExecutor(engine, jpeg_quality=95, render_fn=fake)  # type: ignore[arg-type]
    try:
        with pytest.raises(GenerationFailed, match="ran out of memory"):
            await executor.generate(1, spec(), no_progress)
        g = await executor.generate(2, spec(), no_progress)
    finally:
        await executor.aclose()
    assert size_of(g.jpeg) == (TEST_SIDE, TEST_SIDE)


async def test_an_engine_crash_is_engine_crashed_not_final(engine: Engine) -> None:
    # It was a GenerationFailed (final) locally, while the worker pool retried it: one policy
    # now, carried by the exception's type.
    def broken(engine: Engine, s: GenerationSpec, on_progress: object) -> object:
        raise RuntimeError("boom")

    executor = LocalExecutor(engine, jpeg_quality=95, render_fn=broken)  # type: ignore[arg-type]
    try:
        with pytest.raises(EngineCrashed, match="could not be generated") as caught:
            await executor.generate(1, spec(), no_progress)
        assert not isinstance(caught.value, GenerationFailed)
    finally:
        await executor.aclose()
