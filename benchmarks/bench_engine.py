"""Engine overhead, style switch and JPEG encode, measured in one run on the tiny pipeline.

    .venv/bin/python -m benchmarks.bench_engine

Writes its results into BENCHMARKS.md between the ``engine:measured`` markers. Targets:
engine wall time ≤ 1.03x the bare diffusers call for the same work; a style switch ≤ 5 ms with no
reload; JPEG encode of 1024x1024 ≤ 15 ms median; a 4-image grid (one job, n=4, grid
and four JPEGs; one by one on the cpu profile) ≤ 1.1x four one-image jobs with the same seeds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks import gpu_plan
from benchmarks.report import machine, write_section
from bot.config import Settings
from bot.domain import GenerationSpec
from engine.executors import LocalExecutor
from engine.jpeg import encode_jpeg
from engine.loading import load_engine
from engine.pipeline import Engine

SIDE = 256
STEPS = 4
RUNS = 15


def _noop(step: int, total: int) -> None:
    """No progress output while measuring."""


def bare_call(engine: Engine, spec: GenerationSpec) -> bytes:
    """What a plain diffusers user would write for the same image (adapters set up once)."""
    image = engine.pipe(
        prompt=spec.prompt,
        height=SIDE,
        width=SIDE,
        num_inference_steps=spec.steps,
        true_cfg_scale=1.0,
        generator=torch.Generator("cpu").manual_seed(spec.seed),
        output_type="pil",
    ).images[0]
    return encode_jpeg(image, 95)


async def overhead(engine: Engine, spec: GenerationSpec) -> dict[str, float]:
    executor = LocalExecutor(engine, jpeg_quality=95)
    ours: list[float] = []
    bare: list[float] = []
    steps: list[float] = []
    try:
        await executor.generate(0, spec, _noop)  # leaves Turbo active and its scheduler set
        bare_call(engine, spec)  # warm-up both paths
        for i in range(RUNS):
            t0 = time.perf_counter()
            g = await executor.generate(i, spec, _noop)
            ours.append(time.perf_counter() - t0)
            steps.extend(g.timings.step_ms[1:])
            t0 = time.perf_counter()
            bare_call(engine, spec)
            bare.append(time.perf_counter() - t0)
    finally:
        await executor.aclose()
    e, b = statistics.median(ours) * 1e3, statistics.median(bare) * 1e3
    return {"engine_ms": e, "bare_ms": b, "ratio": e / b, "step_ms": statistics.median(steps)}


GRID_RUNS = 7


async def grid(engine: Engine, spec: GenerationSpec) -> dict[str, float]:
    """One 4-image job against four one-image jobs (seeds s..s+3), alternated, medians."""
    executor = LocalExecutor(engine, jpeg_quality=95)
    four = replace(spec, n=4)
    singles = [replace(spec, seed=s) for s in four.seeds]
    together: list[float] = []
    apart: list[float] = []
    try:
        await executor.generate(0, four, _noop)  # warm-up
        for i in range(GRID_RUNS):
            t0 = time.perf_counter()
            await executor.generate(i, four, _noop)
            together.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for one in singles:
                await executor.generate(i, one, _noop)
            apart.append(time.perf_counter() - t0)
    finally:
        await executor.aclose()
    g, a = statistics.median(together) * 1e3, statistics.median(apart) * 1e3
    return {"grid_ms": g, "singles_ms": a, "grid_ratio": g / a}


def style_switch(engine: Engine) -> dict[str, float]:
    lib = engine.styles
    names = sorted(lib.styles)[:2]
    for n in names:  # make both resident first: switching must not load anything
        lib.activate(engine.pipe, lib.styles[n], turbo=True)
    resident = lib.resident
    times = []
    for i in range(60):
        t0 = time.perf_counter()
        lib.activate(engine.pipe, lib.styles[names[i % 2]], turbo=True)
        times.append(time.perf_counter() - t0)
    assert sorted(lib.resident) == sorted(resident), "a switch reloaded an adapter"
    return {"switch_ms": statistics.median(times) * 1e3, "switch_max_ms": max(times) * 1e3}


def jpeg() -> dict[str, float]:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    ramp = np.linspace(0, 255, 1024, dtype=np.uint8)
    smooth = Image.fromarray(np.stack([np.tile(ramp, (1024, 1))] * 3, axis=-1))
    out: dict[str, float] = {}
    for name, im in (("noisy", noisy), ("smooth", smooth)):
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            data = encode_jpeg(im, 95)
            times.append(time.perf_counter() - t0)
        out[f"jpeg_{name}_ms"] = statistics.median(times) * 1e3
        out[f"jpeg_{name}_kb"] = len(data) / 1024
    return out


def ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def report(r: dict[str, float]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"""Measured {machine()}, torch {torch.__version__}, load average {load:.1f} at the end;
tiny pipeline at {SIDE}x{SIDE}, {STEPS} steps, medians of {RUNS}.

| measure | result | target | |
|---|---|---|---|
| engine `generate` wall time (incl. JPEG, thread hand-offs) | {r["engine_ms"]:.1f} ms | | |
| bare `pipe(...)` + JPEG for the same image | {r["bare_ms"]:.1f} ms | | |
| engine / bare | {r["ratio"]:.3f}x | ≤ 1.03x | {ok(r["ratio"] <= 1.03)} |
| style switch (copy into the style slot, both resident), median / max \
| {r["switch_ms"]:.2f} / {r["switch_max_ms"]:.2f} ms | ≤ 5 ms, no reload \
| {ok(r["switch_ms"] <= 5)} |
| one denoise step (tiny, for scale) | {r["step_ms"]:.1f} ms | | |
| JPEG 1024x1024 q95 4:2:0, noise ({r["jpeg_noisy_kb"]:.0f} KiB) \
| {r["jpeg_noisy_ms"]:.1f} ms | ≤ 15 ms | {ok(r["jpeg_noisy_ms"] <= 15)} |
| JPEG 1024x1024 q95 4:2:0, smooth ({r["jpeg_smooth_kb"]:.0f} KiB) \
| {r["jpeg_smooth_ms"]:.1f} ms | ≤ 15 ms | {ok(r["jpeg_smooth_ms"] <= 15)} |
| 4-image grid job (grid + 4 JPEGs), median of {GRID_RUNS} | {r["grid_ms"]:.1f} ms | | |
| 4 one-image jobs, seeds s..s+3 (the same 4 images) | {r["singles_ms"]:.1f} ms | | |
| grid / 4 singles | {r["grid_ratio"]:.3f}x | ≤ 1.1x | {ok(r["grid_ratio"] <= 1.1)} |
"""


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TURBOBOT_MODEL": "tiny", "TURBOBOT_DATA_DIR": tmp, "TURBOBOT_TINY_SIDE": str(SIDE)}
        engine = load_engine(Settings.model_validate(env).engine())
        spec = GenerationSpec("a lighthouse on a cliff at dusk", None, 1, STEPS, 1024, 1024)
        results = asyncio.run(overhead(engine, spec)) | asyncio.run(grid(engine, spec))
        results |= style_switch(engine) | jpeg()
    block = report(results)
    print(block)
    write_section("engine:measured", "Engine (measured)", block)
    gpu_plan.main()  # the computed GPU memory table beside it


if __name__ == "__main__":
    main()
