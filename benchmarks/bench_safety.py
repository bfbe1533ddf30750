"""The image safety check's cost per image through the core's port, on the tiny model (CPU).

    .venv/bin/python -m benchmarks.bench_safety

``LocalExecutor.check_image`` as the dispatcher calls it after a generation: the JPEG is
decoded, preprocessed and classified with one forward pass on the executor's GPU thread. The
tiny model measures our code path, not the real model's maths; the real model's cost is on
paper in the "VLM" section (``benchmarks.bench_vlm``) and the README.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import tempfile
import time

import numpy as np
from PIL import Image

from benchmarks.report import machine, write_section
from bot.safety import DEFAULT_POLICY
from engine.executors import LocalExecutor
from engine.loading import load_engine

RUNS = 5


def noisy_jpeg(side: int) -> bytes:
    """A JPEG as large as a real result (noise compresses as badly as detail does)."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


async def per_image_ms(executor: LocalExecutor, jpeg: bytes) -> float:
    await executor.check_image(0, jpeg, DEFAULT_POLICY)  # warm-up
    times = []
    for i in range(RUNS):
        t0 = time.perf_counter()
        verdict = await executor.check_image(i, jpeg, DEFAULT_POLICY)
        times.append((time.perf_counter() - t0) * 1e3)
        assert verdict is not None  # the tiny model offers the check
    return statistics.median(times)


async def measure() -> list[str]:
    from bot.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        env = {"TURBOBOT_MODEL": "tiny", "TURBOBOT_DATA_DIR": tmp}
        engine = load_engine(Settings(_env_file=None, **env))  # type: ignore[call-arg]
        executor = LocalExecutor(engine, jpeg_quality=95)
        try:
            rows = []
            for side in (256, 1024):
                ms = await per_image_ms(executor, noisy_jpeg(side))
                rows.append(f"| `check_image`, one {side}² JPEG | {ms:.0f} ms |")
        finally:
            await executor.aclose()
    return rows


def main() -> None:
    rows = asyncio.run(measure())
    body = [
        f"Measured through the port (`LocalExecutor.check_image`: JPEG decode, preprocessing, "
        f"one forward pass on the GPU thread) on the tiny model ({machine()}; CPU, median of "
        f"{RUNS}; load average {os.getloadavg()[0]:.1f} while it ran). A grid of n images "
        "costs n of these. On paper for the real model: see the VLM section (≈ 25 TFLOP, "
        "≈ 63 ms an image on an H100) and the README.",
        "",
        "| operation (tiny model) | time |",
        "|---|---|",
        *rows,
    ]
    write_section("safety", "Image safety check through the port (issue 14)", "\n".join(body))


if __name__ == "__main__":
    main()
