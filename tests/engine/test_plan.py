"""The memory plan: real configs on ``meta``, pinned rounding, and what ``auto`` picks per card."""

from __future__ import annotations

import pytest

from engine import activations, plan, plan_table
from engine.plan import GIB, choose_profile, pinned_block, plan_for, real_sizes

TURBO = plan.TURBO_BYTES


def test_real_configs_build_with_the_real_parameter_counts() -> None:
    s = real_sizes()
    assert s.transformer_bf16 / 2 == pytest.approx(20.43e9, rel=1e-3)
    assert s.vae_bf16 / 2 == pytest.approx(0.127e9, rel=1e-2)
    tr = plan.build_on_meta("transformer")
    assert sum(p.numel() for p in tr.parameters()) == s.transformer_bf16 // 2
    te = plan.build_on_meta("text_encoder")
    assert sum(p.numel() for p in te.parameters()) / 1e9 == pytest.approx(8.29, abs=0.01)
    # fp8 storage halves the Linears only: a little over half of bf16
    assert 0.5 < s.transformer_fp8 / s.transformer_bf16 < 0.51


def test_pinned_blocks_round_up_to_a_power_of_two() -> None:
    assert [pinned_block(n) for n in (0, 1, 2, 3, 4096, 4097)] == [0, 1, 2, 4, 4096, 8192]
    mlp = 3584 * 18944 * 2  # one Qwen2.5-VL MLP weight: 136 MB pins 256 MiB
    assert pinned_block(mlp) == 256 * 2**20
    s = real_sizes()
    assert s.text_encoder_pinned > 1.4 * (s.text_encoder_bf16 - 3 * s.text_encoder_embed)


@pytest.mark.parametrize(
    ("free_gib", "expected"),
    [
        (23.1, "low"),
        (31.0, "low"),
        (39.4, "low"),
        (44.0, "balanced"),
        (78.6, "full"),
        (None, "cpu"),
    ],
)
def test_auto_picks_the_best_profile_that_fits_with_the_margin(
    free_gib: float | None, expected: str
) -> None:
    profile, p = choose_profile(free_gib, TURBO + plan.STYLE_BYTES)
    print(p.describe())
    assert profile == expected
    if free_gib is not None:
        chosen = p.row(profile)
        assert chosen.vram_bytes + p.margin_gib * GIB <= free_gib * GIB


def test_balanced_does_not_fit_a_40_gb_card_and_low_fits_a_4090() -> None:
    p = plan_for(39.4, TURBO + plan.STYLE_BYTES)
    assert not p.row("balanced").fits
    assert p.row("balanced").vram_gib > 38.1  # the bf16 transformer alone
    assert 18 <= plan_for(23.1, TURBO + plan.STYLE_BYTES).row("low").vram_gib <= 22


def test_the_plan_is_logged_and_covers_the_largest_aspect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="engine.plan"):
        choose_profile(44.0, TURBO)
    assert "memory plan (44.0 GiB free, margin 1.5 GiB) → balanced" in caplog.text
    assert "low" in caplog.text
    assert plan.MAX_IMAGE_TOKENS == 4096


def test_nothing_fits_a_small_card_and_the_plan_says_so() -> None:
    profile, p = choose_profile(12.0, TURBO)
    assert not p.fits_any
    assert profile == "low"


def test_more_lora_bytes_need_more_vram_and_offloaded_profiles_pin_host_ram() -> None:
    small, big = plan_for(80, TURBO), plan_for(80, 4 * TURBO)
    for name in ("full", "balanced", "low"):
        assert big.row(name).vram_bytes - small.row(name).vram_bytes == 3 * TURBO
    assert small.row("low").host_steady_bytes > real_sizes().text_encoder_pinned
    assert small.row("full").host_peak_bytes > real_sizes().transformer_bf16


def test_markdown_table_lists_every_card_and_profile() -> None:
    text = plan_table.markdown()
    for label, _ in plan_table.CARDS:
        assert label in text
    assert "| low |" in text


def test_the_vlm_costs_host_ram_not_vram_in_the_offloaded_profiles() -> None:
    s = real_sizes()
    off = plan.plan_for(23.1, TURBO)
    on = plan.plan_for(23.1, TURBO, vlm=True)
    for name in ("balanced", "low"):
        assert on.row(name).vram_bytes == off.row(name).vram_bytes  # the LM head runs on the CPU
        extra = on.row(name).host_steady_bytes - off.row(name).host_steady_bytes
        assert extra == s.text_encoder_lm_head + s.vlm_pinned - s.text_encoder_visual
    assert on.row("full") == off.row("full")  # full holds the LM head and vision tower anyway
    assert on.chosen == off.chosen == "low"  # a 24 GB card keeps its profile with the VLM on
    assert s.vlm_pinned > s.text_encoder_visual  # pinned blocks round up to powers of two
    assert activations.vlm_prefill_activations(s) < activations.transformer_activations(
        s, plan.MAX_IMAGE_TOKENS, plan.TEXT_TOKENS
    )


@pytest.mark.parametrize(
    ("free_images", "want"),
    [(None, [4]), (10.0, [4]), (4.0, [4]), (3.5, [3, 1]), (2.0, [2, 2]), (1.0, [1, 1, 1, 1])],
)
def test_a_grid_runs_in_as_few_batches_as_the_free_memory_allows(
    free_images: float | None, want: list[int]
) -> None:
    per_image, margin = 100, 50
    free = None if free_images is None else int(free_images * per_image) + margin
    assert activations.batch_sizes(4, per_image, free, margin) == want


def test_one_image_always_runs_and_activations_grow_with_the_batch() -> None:
    assert activations.batch_sizes(4, 100, 10, 50) == [1, 1, 1, 1]  # less than one image free
    assert activations.batch_sizes(1, 100, None, 50) == [1]
    s = real_sizes()
    one = activations.transformer_activations(s, 4096, plan.TEXT_TOKENS)
    assert activations.transformer_activations(s, 4096, plan.TEXT_TOKENS, images=4) == 4 * one
    single = plan_for(80.0, TURBO, sizes=s).row("balanced").vram_bytes
    grid = plan_for(80.0, TURBO, sizes=s, images=4).row("balanced").vram_bytes
    assert grid == single + 3 * one  # the transformer's activations dominate in balanced
    assert "4 images in one batch" in plan_table.markdown()
