"""Every operation on image files, in one place: where a job's JPEG lives, writing it durably,
finding it again, removing it.

Paths come from the core (``images/YYYY/MM/<id>.jpg`` under the data dir), never from a user,
and every lookup stays inside the data dir.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

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


def image_relative_path(job_id: int, now: float) -> Path:
    """``images/YYYY/MM/<id>.jpg`` (UTC), relative to the data dir."""
    stamp = time.gmtime(now)
    return Path("images") / f"{stamp.tm_year:04d}" / f"{stamp.tm_mon:02d}" / f"{job_id}.jpg"


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
