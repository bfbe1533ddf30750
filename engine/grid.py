"""The 2x2 grid posted for a job of several images (U1-U4 / V1-V4 pick one of them).

Each cell is the image at half size, so the grid has one image's pixel size: it posts as fast as
a single image and stays under every platform's photo limits; the full-size images are posted
on request (U1-U4). Two images sit side by side; three leave the fourth cell grey.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

EMPTY = (40, 40, 40)


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for ``n`` images."""
    if not 1 <= n <= 4:
        raise ValueError(f"a grid holds 1 to 4 images, not {n}")
    return (1, 1) if n == 1 else (2, 1) if n == 2 else (2, 2)


def compose_grid(images: Sequence[Image.Image]) -> Image.Image:
    """One image of the (same-sized) ``images``, each at half size, in reading order."""
    cols, rows = grid_shape(len(images))
    first = images[0]
    if any(im.size != first.size for im in images):
        raise ValueError("grid images must all have the same size")
    if cols == 1:
        return first.convert("RGB")
    cell = (max(1, first.width // 2), max(1, first.height // 2))
    grid = Image.new("RGB", (cell[0] * cols, cell[1] * rows), EMPTY)
    for k, image in enumerate(images):
        small = image.convert("RGB").resize(cell, Image.Resampling.LANCZOS)
        grid.paste(small, ((k % cols) * cell[0], (k // cols) * cell[1]))
    return grid
