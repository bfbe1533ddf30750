"""Every operation on image files, in one place: where a job's JPEG lives, writing it durably,
finding it again, removing it.

Paths come from the core (``images/YYYY/MM/<id>.jpg`` under the data dir), never from a user,
and every lookup stays inside the data dir.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

ImageWriter = Callable[[Path, bytes], None]
"""Writes bytes to a path durably (blocking; the core runs it in a thread). Injected in tests."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename over ``path``, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def image_relative_path(job_id: int, now: float, suffix: str = "", folder: str = "images") -> Path:
    """``images/YYYY/MM/<id><suffix>.jpg`` (UTC), relative to the data dir."""
    stamp = time.gmtime(now)
    month = Path(folder) / f"{stamp.tm_year:04d}" / f"{stamp.tm_mon:02d}"
    return month / f"{job_id}{suffix}.jpg"


INPUT_QUALITY = 95  # an input image is stored once and read by every job made from it


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=INPUT_QUALITY)
    return buf.getvalue()


class ImageFiles:
    """The image folder under the data dir: the only code that touches image files."""

    def __init__(self, data_dir: Path, writer: ImageWriter = write_atomic) -> None:
        self._root = data_dir.resolve()
        self._write = writer

    def find(self, relative: str | None) -> Path | None:
        """The absolute path of an existing image, or None (none yet, deleted, or outside)."""
        if relative is None:
            return None
        path = (self._root / relative).resolve()
        if not path.is_relative_to(self._root):
            return None
        return path if path.is_file() else None

    async def save(self, job_id: int, jpeg: bytes, now: float) -> str:
        """Write a job's JPEG durably; its path relative to the data dir. OSError on failure."""
        relative = str(image_relative_path(job_id, now))
        await asyncio.to_thread(self._write, self._root / relative, jpeg)
        return relative

    async def save_images(
        self, job_id: int, images: tuple[bytes, ...], now: float
    ) -> tuple[str, ...]:
        """Write each of a job's several images (``<id>-<k>.jpg``, k = 1..n) durably."""
        saved = []
        for k, jpeg in enumerate(images, start=1):
            relative = str(image_relative_path(job_id, now, f"-{k}"))
            await asyncio.to_thread(self._write, self._root / relative, jpeg)
            saved.append(relative)
        return tuple(saved)

    async def save_input(self, image: Image.Image) -> str:
        """Store a user's input image (checked and fitted by :mod:`bot.images`) as a JPEG
        under ``inputs/``, named by its digest: the row that names it may be committed only
        after it is written, and re-sending the same picture stores it once. Re-encoding
        drops whatever metadata the upload carried (location, camera)."""
        data = await asyncio.to_thread(_jpeg, image)
        digest = hashlib.sha256(data).hexdigest()
        relative = f"inputs/{digest[:2]}/{digest}.jpg"
        if self.find(relative) is None:
            await asyncio.to_thread(self._write, self._root / relative, data)
        return relative

    async def copy(self, relative: str, job_id: int, now: float) -> str:
        """Image ``relative`` again as job ``job_id``'s own file (a picked image outlives the
        job it was picked from). OSError when it is gone."""
        source = self.find(relative)
        if source is None:
            raise FileNotFoundError(relative)
        data = await asyncio.to_thread(source.read_bytes)
        return await self.save(job_id, data, now)

    def remove(self, relative: str | None) -> None:
        """Delete an image now (a user deleting it waits for this). OSError on failure."""
        if relative is not None:
            (self._root / relative).unlink(missing_ok=True)

    async def remove_quietly(self, relatives: list[str]) -> None:
        """Delete images in a thread, logging what cannot be deleted (``/forget``)."""
        for relative in relatives:
            try:
                await asyncio.to_thread(self.remove, relative)
            except OSError as err:
                log.error("could not delete an image file: %s", err)  # noqa: TRY400
