"""The local GPU executor: the core's :class:`bot.ports.Executor` for one machine.

All model work runs on ONE dedicated thread (the pipeline is not thread-safe and the GPU does
one thing at a time), so the event loop never blocks. JPEG encoding runs on a second thread, so
job N's encode overlaps job N+1's generation; that is why ``capacity`` is 2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from time import perf_counter
from typing import TypeVar

import torch

from bot.config import Settings
from bot.domain import Generated, GenerationSpec, StyleInfo
from bot.errors import EngineCrashed, GenerationFailed, ShuttingDown, TurbobotError
from bot.ports import ProgressCallback
from engine import memory
from engine.jpeg import encode_jpeg
from engine.pipeline import Engine, Rendered, render
from engine.styles import LoraRefused

log = logging.getLogger(__name__)

T = TypeVar("T")
RenderFn = Callable[[Engine, GenerationSpec, ProgressCallback], Rendered]


class LocalExecutor:
    """Runs generations on this machine's GPU (or CPU); built by :func:`open_local_executor`."""

    def __init__(self, engine: Engine, *, jpeg_quality: int, render_fn: RenderFn = render) -> None:
        self._engine = engine
        self._quality = jpeg_quality
        self._render = render_fn  # tests inject a failing one (OOM) here
        self._gpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turbobot-gpu")
        self._jpeg = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turbobot-jpeg")
        self._styles = _infos(engine)
        self._closed = False

    @property
    def engine(self) -> Engine:
        """The loaded engine (benchmarks read its profile and styles)."""
        return self._engine

    @property
    def capacity(self) -> int:
        return 2

    async def generate(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Generated:
        if self._closed:
            raise ShuttingDown("The image engine is shutting down.")
        loop = asyncio.get_running_loop()
        rendered = await loop.run_in_executor(
            self._gpu, self._render_job, job_id, spec, on_progress
        )
        t0 = perf_counter()
        jpeg = await loop.run_in_executor(self._jpeg, encode_jpeg, rendered.image, self._quality)
        timings = replace(rendered.timings, jpeg_ms=(perf_counter() - t0) * 1e3)
        return Generated(
            jpeg=jpeg, width=rendered.image.width, height=rendered.image.height, timings=timings
        )

    def styles(self) -> list[StyleInfo]:
        return list(self._styles)

    async def rescan_styles(self) -> list[StyleInfo]:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._gpu, self._rescan)
        return self.styles()

    async def aclose(self) -> None:
        self._closed = True
        # Let the job in flight finish; the threads end once their queues are empty.
        await asyncio.to_thread(self._gpu.shutdown, wait=True)
        await asyncio.to_thread(self._jpeg.shutdown, wait=True)

    # --- on the GPU thread ---

    def _render_job(
        self, job_id: int, spec: GenerationSpec, on_progress: ProgressCallback
    ) -> Rendered:
        try:
            return run_with_oom_retry(
                lambda: self._render(self._engine, spec, on_progress), self._after_oom
            )
        except TurbobotError:
            raise
        except LoraRefused as exc:
            self._rescan()  # a style file that went bad is dropped from the list
            raise GenerationFailed(f"Style {spec.style!r} could not be loaded: {exc}") from None
        except Exception as exc:
            log.exception("Job %d failed in the engine", job_id)
            # A crash, not a verdict on the request: the core runs it again (attempt cap).
            raise EngineCrashed(
                f"The image could not be generated ({type(exc).__name__}). Please try again."
            ) from exc

    def _after_oom(self) -> None:
        memory.empty_cache()
        lower = memory.lower_profile(self._engine.profile)
        if lower is not None:
            log.warning(
                "CUDA out of memory: switching memory profile %s → %s", self._engine.profile, lower
            )
            memory.apply_profile(self._engine.pipe, lower)
            self._engine.profile = lower

    def _rescan(self) -> None:
        self._engine.styles.rescan(self._engine.pipe)
        self._styles = _infos(self._engine)


def run_with_oom_retry(work: Callable[[], T], after_oom: Callable[[], None]) -> T:
    """Run ``work``; on CUDA out-of-memory call ``after_oom`` (free, lower profile), retry once."""
    try:
        return work()
    except torch.cuda.OutOfMemoryError:
        log.warning("CUDA out of memory; freeing memory and retrying once")
    after_oom()
    try:
        return work()
    except torch.cuda.OutOfMemoryError:
        raise GenerationFailed(
            "The GPU ran out of memory, even after a retry with a lower memory profile. "
            "Try a smaller aspect or fewer concurrent jobs."
        ) from None


def _infos(engine: Engine) -> list[StyleInfo]:
    return [s.info for s in engine.styles.styles.values()]


@asynccontextmanager
async def open_local_executor(settings: Settings) -> AsyncIterator[LocalExecutor]:
    """Load the model (building the tiny one if configured) and close the threads afterwards."""
    from engine.loading import load_engine

    engine = await asyncio.to_thread(load_engine, settings)
    executor = LocalExecutor(engine, jpeg_quality=settings.jpeg_quality)
    try:
        yield executor
    finally:
        await executor.aclose()
