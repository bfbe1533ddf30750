"""The grid JPEG and the executor's answer for several images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.domain import Generated
from engine.executors import LocalExecutor
from engine.grid import EMPTY, compose_grid, grid_shape
from engine.pipeline import Engine
from tests.engine.conftest import TEST_SIDE, no_progress, spec

COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]


def jpeg_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        return im.convert("RGB")


@pytest.mark.parametrize(
    ("n", "size"), [(1, (80, 48)), (2, (80, 24)), (3, (80, 48)), (4, (80, 48))]
)
def test_grid_cells_are_half_size_in_reading_order(n: int, size: tuple[int, int]) -> None:
    images = [Image.new("RGB", (80, 48), c) for c in COLOURS[:n]]
    grid = compose_grid(images)
    assert grid.size == size
    cols = grid_shape(n)[0]
    for k, colour in enumerate(COLOURS[:n]):
        cell_x, cell_y = (k % cols) * 40 + 20, (k // cols) * 24 + 12
        assert grid.getpixel((cell_x if n > 1 else 40, cell_y if n > 1 else 24)) == colour
    if n == 3:
        assert grid.getpixel((60, 36)) == EMPTY


def test_grid_refuses_mixed_sizes_and_too_many_images() -> None:
    with pytest.raises(ValueError, match="same size"):
        compose_grid([Image.new("RGB", (8, 8)), Image.new("RGB", (8, 16))])
    with pytest.raises(ValueError, match="1 to 4"):
        compose_grid([Image.new("RGB", (8, 8))] * 5)


async def test_executor_returns_the_grid_and_each_full_size_image(engine: Engine) -> None:
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        four: Generated = await executor.generate(1, spec(seed=30, n=4), no_progress)
        one: Generated = await executor.generate(2, spec(seed=31), no_progress)
    finally:
        await executor.aclose()
    assert (four.count, len(four.images), one.count, one.images) == (4, 4, 1, ())
    assert (four.width, four.height) == (TEST_SIDE, TEST_SIDE)
    grid = jpeg_image(four.jpeg)
    assert grid.size == (TEST_SIDE, TEST_SIDE)  # four half-size cells
    second = np.asarray(jpeg_image(four.images[1]), dtype=np.float64)
    alone = np.asarray(jpeg_image(one.jpeg), dtype=np.float64)
    assert second.shape == (TEST_SIDE, TEST_SIDE, 3)
    assert np.abs(second - alone).mean() < 1.0  # image 2 of seed 30 is the image of seed 31
    cell = np.asarray(grid.crop((TEST_SIDE // 2, 0, TEST_SIDE, TEST_SIDE // 2)), dtype=np.float64)
    small = np.asarray(jpeg_image(one.jpeg).resize(cell.shape[1::-1], Image.Resampling.LANCZOS))
    assert np.abs(cell - small).mean() < 6.0  # top right cell: the second image, shrunk
