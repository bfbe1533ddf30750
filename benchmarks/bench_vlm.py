"""The VLM features' cost: measured on the tiny model (CPU) and derived on paper for the real one.

    .venv/bin/python -m benchmarks.bench_vlm

The tiny model's numbers measure our code path (preprocessing, prompt building, one forward or
a generate loop), not the real model's maths; the paper numbers come from the real configs
built on ``meta`` (parameter counts) and the real image processor (token counts).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks.report import machine, write_section
from engine import plan, vlm
from engine.loading import load_engine
from engine.pipeline import Engine

POLICY = "No gore, no nudity, no hate symbols."
SAFETY_PROMPT_TOKENS = 70  # the chat frame, the question and a one-line policy (tiny BPE: ~60)
DESCRIBE_TOKENS = 200
# Peak dense bf16 tensor throughput (TFLOP/s) and memory bandwidth (TB/s); realistic fractions.
H100 = (989.0, 3.35)
RTX4090 = (165.0, 1.0)  # bf16 with fp32 accumulate on GeForce runs at half the fp16 rate
PCIE_GBPS = 25.0  # PCIe 4.0 x16 in practice
MFU = 0.4  # fraction of peak a 1.4k-token prefill reaches


def tiny_engine(data_dir: Path) -> Engine:
    from bot.config import Settings

    env = {"TURBOBOT_MODEL": "tiny", "TURBOBOT_DATA_DIR": str(data_dir)}
    return load_engine(Settings(_env_file=None, **env).engine())  # type: ignore[call-arg]


def median_ms(work: object, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measured(engine: Engine) -> list[str]:
    rows = []
    for side in (64, 1024):
        image = Image.new("RGB", (side, side), (120, 60, 200))
        tokens = vlm.image_inputs(engine, image).tokens
        ms = median_ms(lambda im=image: vlm.safety_check(engine, im, POLICY))
        rows.append(f"| safety check, {side}² image ({tokens} image tokens) | {ms:.0f} ms |")
    image = Image.new("RGB", (64, 64), (120, 60, 200))
    out = vlm.describe(engine, image, "en", 32, 60)
    ms = median_ms(lambda: vlm.describe(engine, image, "en", 32, 60), runs=3)
    rows.append(f"| describe, 64² image, {out.new_tokens} new tokens | {ms:.0f} ms |")
    ms = median_ms(lambda: vlm.enhance(engine, 'a sign "OPEN"', 32, 60), runs=3)
    rows.append(f"| enhance, 32 new tokens | {ms:.0f} ms |")
    return rows


def paper() -> list[str]:
    te = plan.build_on_meta("text_encoder")
    dec = te.model.language_model
    decoder = sum(p.numel() for p in dec.parameters()) - dec.embed_tokens.weight.numel()
    visual = sum(p.numel() for p in te.model.visual.parameters())
    proc = vlm.build_processor(Path("/nonexistent"), te.config.vision_config)
    grid = proc(images=[Image.new("RGB", (1024, 1024))], return_tensors="pt")["image_grid_thw"]
    patches = int(grid.prod())
    tokens = patches // 4 + SAFETY_PROMPT_TOKENS
    vision_tf = 2 * visual * patches / 1e12
    lm_tf = 2 * decoder * tokens / 1e12
    total = vision_tf + lm_tf
    image_tf = 4 * 2 * 20.4e9 * (4096 + 100) / 1e12
    h100_ms = total / (H100[0] * MFU) * 1e3
    g4090_ms = total / (RTX4090[0] * MFU) * 1e3
    stream_s = (decoder + visual) * 2 / (PCIE_GBPS * 1e9)
    tok_h100 = decoder * 2 / (H100[1] * 1e12) * 1e3
    tok_pcie = decoder * 2 / (PCIE_GBPS * 1e9)
    return [
        f"- A 1024² image becomes {patches} patches of 14 px ({grid[0, 1]}x{grid[0, 2]} after "
        f"Qwen2-VL's resize to multiples of 28 under our 1024² pixel cap), {patches // 4} tokens "
        f"after the 2x2 merge; with the question and a short policy ≈ {tokens} prompt tokens.",
        f"- Vision tower: 2 x {visual / 1e9:.3f} B params x {patches} patches ≈ "
        f"{vision_tf:.1f} TFLOP (its 4 full-attention blocks add ≈ 0.5 TFLOP, the 28 windowed "
        f"ones little). Decoder prefill: 2 x {decoder / 1e9:.2f} B params (no embedding, no "
        f"vision) x {tokens} tokens ≈ {lm_tf:.1f} TFLOP; attention ≈ 0.7 TFLOP; the answer is "
        "one logit row (2 x 0.545 B ≈ 1 GFLOP).",
        f"- **Safety check ≈ {total:.0f} TFLOP ≈ {total / image_tf * 100:.0f} % of a 4-step "
        f"1024² image** (≈ {image_tf:.0f} TFLOP). At {MFU:.0%} of peak bf16: H100 (`full`) ≈ "
        f"{h100_ms:.0f} ms; RTX 4090 ≈ {g4090_ms:.0f} ms of compute, but in `low` the decoder "
        f"and vision tower stream over PCIe each pass: + ≈ {stream_s:.1f} s at "
        f"{PCIE_GBPS:g} GB/s.",
        f"- **Describe / enhance** decode token by token, each reading every decoder weight "
        f"({decoder * 2 / 1e9:.1f} GB): H100 (`full`) ≥ {tok_h100:.1f} ms a token, "
        f"{DESCRIBE_TOKENS} tokens ≈ {tok_h100 * DESCRIBE_TOKENS / 1e3 * 1.5:.1f} s at ~2/3 of "
        f"peak bandwidth. In `balanced`/`low` every token streams the decoder over PCIe: "
        f"≈ {tok_pcie:.2f} s a token, {DESCRIBE_TOKENS} tokens ≈ "
        f"{tok_pcie * DESCRIBE_TOKENS / 60:.0f} min, plus the LM head on the CPU (one 3584x152064 "
        "bf16 row product a token: 0.35 s on this 2-core VM, tens of ms on a desktop CPU). "
        "On offloaded profiles use small `max_new_tokens` (≈ 60) and the time limit, or keep "
        "describe/enhance off; the safety check (prefill only) stays affordable.",
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = tiny_engine(Path(tmp))
        rows = measured(engine)
    body = [
        f"Measured on the tiny model ({machine()}; CPU, profile `cpu`, bf16 weights): the code "
        "path, not the real model's maths; most of it is CPU bf16 matmul overhead on tiny shapes "
        "(~20 ms a Linear call on this shared VM). Median of 7 (safety) or 3 (describe/enhance) "
        "runs.",
        "",
        "| operation (tiny model) | time |",
        "|---|---|",
        *rows,
        "",
        "On paper for the real Qwen2.5-VL-7B text encoder (`python -m benchmarks.bench_vlm`, "
        "parameter counts from the real config on `meta`, token counts from the real image "
        "processor):",
        "",
        *paper(),
    ]
    text = "\n".join(body)
    print(text)
    write_section("vlm", "VLM: describe, enhance, safety check (measured and on paper)", text)


if __name__ == "__main__":
    main()
