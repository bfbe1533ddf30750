"""The per-card memory table BENCHMARKS.md carries, from :func:`engine.plan.plan_for`.

``python -m engine.plan_table --markdown`` prints it.
"""

from __future__ import annotations

import argparse

from bot.domain import UPSCALE_LONG_SIDE
from engine.activations import VLM_PREFILL_TOKENS, transformer_activations
from engine.plan import (
    GIB,
    MARGIN_GIB,
    MAX_IMAGE_TOKENS,
    RESIDENT_STYLES,
    STYLE_BYTES,
    TEXT_TOKENS,
    TURBO_BYTES,
    ModelSizes,
    plan_for,
    real_sizes,
)

# Free memory after the CUDA context, per card class (GiB); nominal GB as sold.
CARDS: tuple[tuple[str, float], ...] = (
    ("24 GB (RTX 4090, RTX 3090)", 23.1),
    ("32 GB (RTX 5090)", 31.0),
    ("48 GB (L40S, RTX 6000 Ada)", 44.0),
    ("80 GB (H100, A100-80)", 78.6),
)


def markdown(sizes: ModelSizes | None = None) -> str:
    """The per-card table (VRAM, host RAM, what ``auto`` picks), from :func:`plan_for`."""
    s = sizes or real_sizes()
    gpu_loras = TURBO_BYTES + STYLE_BYTES  # Turbo + the one style slot
    styles = RESIDENT_STYLES * STYLE_BYTES
    lines = [
        f"Computed by `python -m engine.plan_table --markdown` from the real configs on `meta`: "
        f"transformer {s.transformer_bf16 / GIB:.1f} GiB bf16 ({s.transformer_fp8 / GIB:.1f} "
        f"GiB with fp8 Linears), text encoder {s.text_encoder_bf16 / GIB:.1f} GiB "
        f"({s.text_encoder_pinned / GIB:.1f} GiB pinned), VAE {s.vae_bf16 / GIB:.2f} GiB; "
        f"Turbo {TURBO_BYTES / 1e9:.2f} GB + a style slot {STYLE_BYTES / 1e9:.2f} GB on the GPU, "
        f"{RESIDENT_STYLES} resident styles; {MAX_IMAGE_TOKENS} image tokens; "
        f"margin {MARGIN_GIB:g} GiB.",
        "",
        "| profile | VRAM (GiB) | host RAM steady / while loading (GiB) |",
        "|---|---|---|",
    ]
    plan = plan_for(None, gpu_loras, resident_styles_bytes=styles, sizes=s)
    ref = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s)
    for r in (*ref.rows, *plan.rows):
        lines.append(
            f"| {r.profile} | {r.vram_gib:.1f} | {r.host_steady_gib:.1f} / {r.host_peak_gib:.1f} |"
        )
    lines += [
        "",
        "| card (free GiB) | full | balanced | low | `auto` picks |",
        "|---|---|---|---|---|",
    ]
    for label, free in CARDS:
        p = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s)
        cells = [("fits" if r.fits else "no") for r in p.rows]
        pick = p.chosen if p.fits_any else "none fits (low, expect OOM)"
        lines.append(f"| {label} ({free:g}) | {' | '.join(cells)} | {pick} |")
    lines += ["", _vlm_line(s, gpu_loras, styles)]
    return "\n".join(lines + grid_lines(s, gpu_loras, styles)) + "\n"


GRID = 4  # MAX_IMAGES: the batch a 4-image grid runs in when memory allows
UPSCALE_SIDE = UPSCALE_LONG_SIDE  # an upscale of a 1:1 image: the most tokens any job has
UPSCALE_TOKENS = (UPSCALE_SIDE // 16) ** 2


def grid_lines(s: ModelSizes, gpu_loras: int, styles: int) -> list[str]:
    """The grid table: VRAM of one batch of GRID images per profile, and per card."""
    one = transformer_activations(s, MAX_IMAGE_TOKENS, TEXT_TOKENS)
    single = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s)
    batch = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, images=GRID)
    lines = [
        "",
        f"Several images per prompt: the transformer's activations grow with the batch "
        f"({one / GIB:.2f} GiB an image at {MAX_IMAGE_TOKENS} tokens); the VAE decodes the "
        f"images one by one. The engine batches as many as the free VRAM allows after loading "
        f"(`engine.plan.batch_sizes`) and runs the rest in further batches.",
        "",
        f"| profile | VRAM, 1 image | VRAM, {GRID} images in one batch "
        f"| VRAM, upscale to {UPSCALE_SIDE}x{UPSCALE_SIDE} ({UPSCALE_TOKENS} tokens) |",
        "|---|---|---|---|",
    ]
    up = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, tokens=UPSCALE_TOKENS)
    lines += [
        f"| {a.profile} | {a.vram_gib:.1f} | {b.vram_gib:.1f} | {u.vram_gib:.1f} |"
        for a, b, u in zip(single.rows, batch.rows, up.rows, strict=True)
    ]
    lines += ["", f"| card (free GiB) | {GRID} images in one batch with |", "|---|---|"]
    for label, free in CARDS:
        p = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s)
        g = plan_for(free, gpu_loras, resident_styles_bytes=styles, sizes=s, images=GRID)
        fits = [r.profile for r in g.rows if r.fits and p.row(r.profile).fits]
        lines.append(f"| {label} ({free:g}) | {', '.join(fits) or 'none (batches of fewer)'} |")
    return lines


def _vlm_line(s: ModelSizes, gpu_loras: int, styles: int) -> str:
    """What TURBOBOT_VLM=1 (describe, enhance, safety check) adds to the offloaded profiles."""
    off = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s).row("low")
    on = plan_for(1e9, gpu_loras, resident_styles_bytes=styles, sizes=s, vlm=True).row("low")
    return (
        f"With `TURBOBOT_VLM=1` (the default: describe, enhance, safety check) `balanced` and "
        f"`low` keep the LM head in host RAM ({s.text_encoder_lm_head / GIB:.2f} GiB, computed "
        f"on the CPU, one row per token) and stream the vision tower "
        f"({s.text_encoder_visual / GIB:.2f} GiB, {s.vlm_pinned / GIB:.2f} GiB pinned): host RAM "
        f"+{(on.host_steady_bytes - off.host_steady_bytes) / GIB:.1f} GiB, VRAM "
        f"+{(on.vram_bytes - off.vram_bytes) / GIB:.1f} GiB (a {VLM_PREFILL_TOKENS}-token image "
        f"prompt needs less than the transformer's activations). `full` holds both already."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md table")
    parser.add_argument("--gpu-gib", type=float, default=None, help="free GPU memory in GiB")
    parser.add_argument("--loras-gb", type=float, default=TURBO_BYTES / 1e9)
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(), end="")
        return
    print(plan_for(args.gpu_gib, int(args.loras_gb * 1e9)).describe())


if __name__ == "__main__":
    main()
