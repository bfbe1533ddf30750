"""Several images per prompt, vary / upscale / image input (img2img) on the tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bot.domain import MAX_SEED, VARY_STRONG, VARY_SUBTLE, GenerationSpec, JobKind, image_seed
from bot.errors import BadRequest
from engine import memory
from engine.img2img import (
    img2img_pipe,
    strength_sigmas,
    strength_steps,
    upscale_size,
)
from engine.pipeline import Engine, render, render_size
from engine.styles import STYLE_SLOT
from tests.engine.conftest import TEST_SIDE, no_progress, spec
from tests.engine.test_profiles import add_style, fresh_engine, lora_dtypes

SHARED = ("transformer", "vae", "text_encoder", "tokenizer")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def save_parent(engine: Engine, name: str, image: Image.Image) -> str:
    assert engine.data_dir is not None
    folder = engine.data_dir / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / name)
    return f"inputs/{name}"


def vary(parent: str, seed: int, strength: float | None, **kw: object) -> GenerationSpec:
    return spec(seed=seed, kind=JobKind.VARY, init_image=parent, strength=strength, **kw)


# ---------------------------------------------------------------- several images, one batch


@pytest.fixture
def batched(monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch for all n images (the CPU profile runs them one by one otherwise)."""
    from engine import pipeline

    monkeypatch.setattr(pipeline, "batch_sizes_for", lambda engine, n, w, h: [n])


@pytest.mark.usefixtures("batched")
def test_image_k_of_a_batch_is_the_one_image_job_with_seed_plus_k(engine: Engine) -> None:
    batch = render(engine, spec(seed=41, n=3), no_progress).images
    singles = [render(engine, spec(seed=41 + k), no_progress).image for k in range(3)]
    assert len(batch) == 3
    assert [b.tobytes() for b in batch] == [s.tobytes() for s in singles]
    assert len({b.tobytes() for b in batch}) == 3


def test_image_seeds_wrap_inside_the_seed_range() -> None:
    assert spec(seed=MAX_SEED - 1, n=3).seeds == (MAX_SEED - 1, MAX_SEED, 0)
    assert image_seed(5, 0) == 5


def test_progress_counts_every_step_of_every_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import pipeline

    seen: list[tuple[int, int]] = []
    out = render(engine, spec(seed=41, n=3), lambda s, t: seen.append((s, t)))  # cpu: 1 by 1
    assert seen == [(i, 6) for i in range(1, 7)]  # 2 steps x 3 batches
    assert len(out.timings.step_ms) == 6
    monkeypatch.setattr(pipeline, "batch_sizes_for", lambda *a: [3])
    batched = render(engine, spec(seed=41, n=3), no_progress)
    assert [a.tobytes() for a in out.images] == [b.tobytes() for b in batched.images]


def test_batches_come_from_the_plans_activations_and_the_free_vram(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import activations, pipeline, plan

    assert pipeline.batch_sizes_for(engine, 4, 64, 64) == [1, 1, 1, 1]  # cpu: one by one
    # tiny: 2 x 16 heads
    per_image = activations.activations_per_image(32, 128, 16, plan.TEXT_TOKENS)
    free = plan.MARGIN_GIB * plan.GIB + 2.5 * per_image
    monkeypatch.setattr(pipeline, "cuda_free_gb", lambda: free / plan.GIB)
    monkeypatch.setattr(engine, "profile", "balanced")
    assert pipeline.batch_sizes_for(engine, 4, 64, 64) == [2, 2]
    assert pipeline.batch_sizes_for(engine, 1, 64, 64) == [1]


# ---------------------------------------------------------------- img2img shares the model


def test_img2img_pipeline_shares_the_loaded_modules_and_their_dtype(engine: Engine) -> None:
    dtypes = {name: getattr(engine.pipe, name).dtype for name in ("transformer", "vae")}
    parent = save_parent(engine, "share.png", render(engine, spec(seed=3), no_progress).image)
    render(engine, vary(parent, 4, VARY_SUBTLE), no_progress)
    i2i = img2img_pipe(engine)
    for name in SHARED:
        assert getattr(i2i, name) is getattr(engine.pipe, name), name
    assert {name: getattr(engine.pipe, name).dtype for name in dtypes} == dtypes
    assert img2img_pipe(engine) is i2i  # built once


def test_from_pipe_would_cast_the_shared_modules_to_float32(engine: Engine) -> None:
    """Why engine.img2img does not call from_pipe: it ends with ``.to(dtype=float32)``."""
    from diffusers import QwenImageImg2ImgPipeline

    vae = engine.pipe.vae
    try:
        other = QwenImageImg2ImgPipeline.from_pipe(engine.pipe)
        assert other.vae is vae
        assert vae.dtype == torch.float32  # the shared module itself was cast
    finally:
        engine.pipe.to(dtype=torch.bfloat16)
    assert vae.dtype == torch.bfloat16


# ---------------------------------------------------------------- strength on the Turbo schedule


def test_strength_runs_ceil_of_steps_times_strength_and_at_least_one() -> None:
    assert [strength_steps(4, s) for s in (0.05, 0.25, 0.35, 0.5, 0.7, 1.0)] == [1, 1, 2, 2, 3, 4]
    assert strength_steps(8, VARY_SUBTLE) == 3
    assert strength_sigmas(4, 1.0) == pytest.approx([1.0, 0.75, 0.5, 0.25])  # = text-to-image's
    assert strength_sigmas(4, VARY_SUBTLE) == pytest.approx([0.35, 0.175])


def test_strength_starts_on_the_turbo_curve_below_the_pipelines_own_rule(engine: Engine) -> None:
    sched = engine.turbo_scheduler
    mu = sched.config.base_shift
    sched.set_timesteps(sigmas=strength_sigmas(4, VARY_SUBTLE), mu=mu)
    ours = float(sched.sigmas[0])
    sched.set_timesteps(sigmas=list(np.linspace(1.0, 0.25, 4)), mu=mu)
    turbo = [float(s) for s in sched.sigmas]
    # diffusers' rule at 0.35 skips int(4 - 1.4) = 2 steps and starts at the third sigma (.714)
    assert ours == pytest.approx(2.5 * 0.35 / (2.5 * 0.35 + 0.65), abs=1e-3)  # .574
    assert turbo[3] < ours < turbo[2]


def test_vary_reports_the_steps_it_runs(engine: Engine) -> None:
    parent = save_parent(engine, "steps.png", render(engine, spec(seed=3), no_progress).image)
    seen: list[tuple[int, int]] = []
    render(engine, vary(parent, 9, VARY_STRONG, steps=4), lambda s, t: seen.append((s, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    render(engine, vary(parent, 9, VARY_SUBTLE, steps=4), no_progress)
    ran = [float(s) for s in engine.turbo_scheduler.sigmas]  # the shared scheduler, as set
    assert ran == pytest.approx([0.574, 0.347, 0.0], abs=1e-3)  # not diffusers' [.714, .455, 0]


# ---------------------------------------------------------------- vary keeps the composition


def test_vary_is_closer_to_its_parent_than_a_reroll_and_strong_is_in_between(
    engine: Engine,
) -> None:
    """The tiny model's images share a large seed-independent part (random weights); measured
    on what the seed adds (minus the mean of four images) the parent's own part survives."""
    mean = np.mean([pixels(im) for im in render(engine, spec(seed=1, n=4), no_progress).images], 0)

    def corr(a: Image.Image, b: Image.Image) -> float:
        return float(np.corrcoef((pixels(a) - mean).ravel(), (pixels(b) - mean).ravel())[0, 1])

    for seed in (11, 12):
        image = render(engine, spec(seed=seed), no_progress).image
        parent = save_parent(engine, f"parent{seed}.png", image)
        reroll = render(engine, spec(seed=seed + 50), no_progress).image
        subtle = render(engine, vary(parent, seed + 50, VARY_SUBTLE), no_progress).image
        strong = render(engine, vary(parent, seed + 50, VARY_STRONG), no_progress).image
        assert corr(image, reroll) < corr(image, strong) < corr(image, subtle) < 0.99
        assert subtle.tobytes() != image.tobytes()


def test_vary_at_strength_one_is_the_reroll_with_that_seed(engine: Engine) -> None:
    parent = save_parent(engine, "one.png", render(engine, spec(seed=3), no_progress).image)
    full = render(engine, vary(parent, 77, 1.0), no_progress).image
    assert full.tobytes() == render(engine, spec(seed=77), no_progress).image.tobytes()


@pytest.mark.usefixtures("batched")
def test_a_batch_of_variations_follows_the_seed_rule(engine: Engine) -> None:
    parent = save_parent(engine, "batch.png", render(engine, spec(seed=3), no_progress).image)
    batch = render(engine, vary(parent, 20, VARY_SUBTLE, n=2), no_progress).images
    second = render(engine, vary(parent, 21, VARY_SUBTLE), no_progress).image
    assert batch[1].tobytes() == second.tobytes() != batch[0].tobytes()


# ---------------------------------------------------------------- upscale, input files


def test_upscale_sizes_keep_the_aspect_on_multiples_of_16() -> None:
    assert upscale_size(1024, 1024) == (1536, 1536)
    assert upscale_size(1360, 768) == (1536, 864)
    assert upscale_size(768, 1360) == (864, 1536)
    for w, h in (upscale_size(1184, 880), upscale_size(832, 1248)):
        assert (w % 16, h % 16, max(w, h)) == (0, 0, 1536)


def test_upscale_renders_larger_than_the_image_and_keeps_it(engine: Engine) -> None:
    image = render(engine, spec(seed=3), no_progress).image
    parent = save_parent(engine, "up.png", image)
    up_spec = spec(seed=8, kind=JobKind.UPSCALE, init_image=parent)
    assert render_size(engine, up_spec) == (TEST_SIDE * 3 // 2, TEST_SIDE * 3 // 2)
    up = render(engine, up_spec, no_progress).image
    assert up.size == (96, 96)
    reroll = render(engine, spec(seed=8), no_progress).image.resize(up.size)
    near = image.resize(up.size)
    assert np.abs(pixels(up) - pixels(near)).mean() < np.abs(pixels(reroll) - pixels(near)).mean()


@pytest.mark.parametrize("name", ["../escape.png", "/etc/passwd", "", "a\\..\\b.png"])
def test_an_input_outside_the_data_dir_is_refused(engine: Engine, name: str) -> None:
    with pytest.raises(BadRequest, match="input image"):
        render(engine, vary(name, 1, VARY_SUBTLE), no_progress)


def test_a_symlink_out_of_the_data_dir_and_a_missing_file_are_refused(
    engine: Engine, tmp_path: Path
) -> None:
    assert engine.data_dir is not None
    outside = tmp_path / "secret.png"
    Image.new("RGB", (64, 64)).save(outside)
    link = engine.data_dir / "inputs" / "link.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    with pytest.raises(BadRequest, match="inside the data folder"):
        render(engine, vary("inputs/link.png", 1, VARY_SUBTLE), no_progress)
    with pytest.raises(BadRequest, match="no longer available"):
        render(engine, vary("inputs/gone.png", 1, VARY_SUBTLE), no_progress)


def test_a_broken_input_file_is_a_clear_error(engine: Engine) -> None:
    assert engine.data_dir is not None
    (engine.data_dir / "inputs").mkdir(parents=True, exist_ok=True)
    (engine.data_dir / "inputs" / "bad.png").write_bytes(b"GIF89a not really")
    with pytest.raises(BadRequest, match="not a supported image"):
        render(engine, vary("inputs/bad.png", 1, VARY_SUBTLE), no_progress)


# ---------------------------------------------------------------- every memory profile, styles


@pytest.mark.usefixtures("batched")
@pytest.mark.parametrize("profile", ["full", "balanced", "low"])
def test_vary_runs_under_each_profile_with_the_style_slot(
    tiny_data_dir: Path, tmp_path: Path, profile: memory.Profile
) -> None:
    engine = fresh_engine(tiny_data_dir, tmp_path)
    add_style(engine, "attn", ("attn.to_q", "attn.to_k", "attn.to_v"), seed=1)
    parent = save_parent(
        engine, f"prof-{profile}.png", render(engine, spec(seed=3), no_progress).image
    )
    img2img_pipe(engine)  # built before the profile: the profile reaches it through the modules
    memory.apply_profile(engine.pipe, profile, device="cpu")
    styled = render(engine, vary(parent, 5, VARY_STRONG, style="attn", n=2), no_progress).images
    plain = render(engine, vary(parent, 5, VARY_STRONG, n=2), no_progress).images
    assert styled[0].tobytes() != plain[0].tobytes()
    assert styled[0].tobytes() != styled[1].tobytes()
    i2i = img2img_pipe(engine)
    for name in SHARED:
        assert getattr(i2i, name) is getattr(engine.pipe, name), name
    assert lora_dtypes(engine, STYLE_SLOT) == {torch.bfloat16}
    if profile == "low":
        to_q = i2i.transformer.transformer_blocks[0].attn.to_q
        assert to_q.base_layer.weight.dtype == torch.float8_e4m3fn  # not cast back by img2img
