"""The local GPU executor: the core's :class:`bot.ports.Executor` for one machine.

All model work runs on ONE dedicated thread (the pipeline is not thread-safe and the GPU does
one thing at a time), so the event loop never blocks. JPEG encoding runs on a second thread, so
job N's encode overlaps job N+1's generation; that is why ``capacity`` is 2.

The VLM jobs (:mod:`engine.vlm`: describe, enhance, safety check) run on the same GPU thread,
so they queue behind and between generations like any job; describe, enhance and
``vlm_availability`` are the core's ``Executor`` port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

import torch
from PIL import Image

from bot import texts
from bot.domain import (
    Generated,
    GenerationSpec,
    ImageVerdict,
    Language,
    StyleInfo,
    StyleScan,
    VlmAvailability,
    VlmFeature,
)
from bot.errors import BadRequest, EngineCrashed, GenerationFailed, ShuttingDown, TurbobotError
from bot.i18n import msg
from bot.ports import ProgressCallback
from bot.slices import EngineSettings
from engine import memory
from engine.grid import compose_grid
from engine.jpeg import encode_jpeg
from engine.pipeline import Engine, Rendered, render
from engine.styles import LoraRefused
from engine.vlm import FEATURES, SafetyVerdict, VlmFeatures

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

T = TypeVar("T")
DESCRIBE_TOKENS = 200  # a detailed prompt is 60-150 words
ENHANCE_TOKENS = 300
VLM_TIME_LIMIT_S = 60.0
MAX_UPLOAD_PIXELS = 40_000_000  # decoded only after this check (decompression bombs)
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
            raise ShuttingDown(texts.SHUTTING_DOWN)
        loop = asyncio.get_running_loop()
        rendered = await loop.run_in_executor(
            self._gpu, self._render_job, job_id, spec, on_progress
        )
        t0 = perf_counter()
        jpeg, images = await loop.run_in_executor(
            self._jpeg, encode_all, rendered.images, self._quality
        )
        timings = replace(rendered.timings, jpeg_ms=(perf_counter() - t0) * 1e3)
        return Generated(
            jpeg=jpeg,
            width=rendered.image.width,
            height=rendered.image.height,
            timings=timings,
            images=images,
        )

    # --- the VLM (engine.vlm): same GPU thread, so a describe waits its turn like an image ---

    def vlm_features(self) -> VlmFeatures | None:
        """What the loaded text encoder can do (None: TURBOBOT_VLM=0)."""
        return self._engine.vlm

    def vlm_availability(self) -> VlmAvailability:
        return availability(self._engine.vlm)

    async def describe(
        self,
        job_id: int,
        image_bytes: bytes,
        language: Language,
        *,
        max_new_tokens: int = DESCRIBE_TOKENS,
        time_limit_s: float = VLM_TIME_LIMIT_S,
    ) -> str:
        """A prompt that would recreate the image (raw model text: the core sanitises it)."""
        from engine import vlm

        image = decode_image(image_bytes)
        lang: vlm.Language = "zh" if language is Language.ZH else "en"

        def work() -> vlm.GeneratedText:
            return vlm.describe(self._engine, image, lang, max_new_tokens, time_limit_s)

        out = await self._vlm_job(job_id, work)
        return out.text

    async def enhance(
        self,
        job_id: int,
        prompt: str,
        *,
        max_new_tokens: int = ENHANCE_TOKENS,
        time_limit_s: float = VLM_TIME_LIMIT_S,
    ) -> str:
        """``prompt`` rewritten in detail, quoted text kept verbatim."""
        from engine import vlm

        out = await self._vlm_job(
            job_id, lambda: vlm.enhance(self._engine, prompt, max_new_tokens, time_limit_s)
        )
        return out.text

    async def safety_check(self, job_id: int, jpeg: bytes, policy: str) -> SafetyVerdict:
        """Classify a generated image against ``policy`` (one forward pass)."""
        from engine import vlm

        image = decode_image(jpeg)
        return await self._vlm_job(job_id, lambda: vlm.safety_check(self._engine, image, policy))

    async def check_image(self, job_id: int, jpeg: bytes, policy: str) -> ImageVerdict | None:
        """The port's safety check: None when the loaded model cannot run it (the core posts
        the image unchecked and logs why)."""
        features = self.vlm_features()
        if features is None or not features.available("safety"):
            return None
        verdict = await self.safety_check(job_id, jpeg, policy)
        return ImageVerdict(flagged=verdict.label == "unsafe", score=verdict.raw, policy=policy)

    async def _vlm_job(self, job_id: int, work: Callable[[], T]) -> T:
        if self._closed:
            raise ShuttingDown(texts.SHUTTING_DOWN)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._gpu, self._run_vlm, job_id, work)

    def _run_vlm(self, job_id: int, work: Callable[[], T]) -> T:
        try:
            return run_with_oom_retry(work, self._after_oom)
        except TurbobotError:
            raise
        except Exception as exc:
            log.exception("VLM job %d failed in the engine", job_id)
            raise GenerationFailed(
                msg("engine.text_model_failed", kind=type(exc).__name__)
            ) from exc

    def styles(self) -> list[StyleInfo]:
        return list(self._styles)

    async def rescan_styles(self) -> StyleScan:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._gpu, self._rescan)
        refused = tuple(self._engine.styles.refusals.values())
        return StyleScan(tuple(self.styles()), refused)

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
            # What is wrong with the file is for the operator; the user learns what to do.
            log.warning("job %d: style %r refused: %s", job_id, spec.style, exc)
            raise GenerationFailed(msg("engine.style_broken", style=repr(spec.style))) from None
        except Exception as exc:
            log.exception("Job %d failed in the engine", job_id)
            # A crash, not a verdict on the request: the core runs it again (attempt cap).
            raise EngineCrashed(msg("engine.crashed", kind=type(exc).__name__)) from exc

    def _after_oom(self) -> None:
        memory.empty_cache()
        lower = memory.lower_profile(self._engine.profile)
        if lower is not None:
            log.warning(
                "CUDA out of memory: switching memory profile %s → %s", self._engine.profile, lower
            )
            memory.apply_profile(self._engine.pipe, lower, keep_vlm=self._engine.vlm is not None)
            self._engine.profile = lower

    def _rescan(self) -> None:
        self._engine.styles.rescan(self._engine.pipe)
        self._styles = _infos(self._engine)


NO_VLM = "the VLM features are off (TURBOBOT_VLM=0)"


def availability(features: VlmFeatures | None) -> VlmAvailability:
    """The engine's check at load, as the core's port reports it."""
    if features is None:
        return VlmAvailability.none(NO_VLM)
    return VlmAvailability(
        tuple(VlmFeature(f, features.available(f), features.why.get(f, "")) for f in FEATURES)
    )


def encode_all(images: tuple[Image.Image, ...], quality: int) -> tuple[bytes, tuple[bytes, ...]]:
    """What :class:`Generated` carries: one image's JPEG; or the grid's and each image's."""
    if len(images) == 1:
        return encode_jpeg(images[0], quality), ()
    singles = tuple(encode_jpeg(im, quality) for im in images)
    return encode_jpeg(compose_grid(images), quality), singles


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
        raise GenerationFailed(msg("engine.out_of_memory")) from None


def decode_image(data: bytes) -> Image.Image:
    """An uploaded image, checked before decoding: a known format and a sane pixel count."""
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(BytesIO(data))
        if image.width * image.height > MAX_UPLOAD_PIXELS:
            raise BadRequest(
                msg(
                    "engine.image_too_large",
                    width=image.width,
                    height=image.height,
                    megapixels=MAX_UPLOAD_PIXELS // 10**6,
                )
            )
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise BadRequest(msg("engine.not_an_image")) from None
    return image.convert("RGB")


def _infos(engine: Engine) -> list[StyleInfo]:
    return [s.info for s in engine.styles.styles.values()]


@asynccontextmanager
async def open_local_executor(settings: EngineSettings) -> AsyncIterator[LocalExecutor]:
    """Load the model (building the tiny one if configured) and close the threads afterwards."""
    from engine.loading import load_engine

    engine = await asyncio.to_thread(load_engine, settings)
    executor = LocalExecutor(engine, jpeg_quality=settings.jpeg_quality)
    try:
        yield executor
    finally:
        await executor.aclose()
