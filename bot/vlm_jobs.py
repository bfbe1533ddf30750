"""The VLM's two job kinds in the core: a describe, and the enhance step before an image.

Both run on the executor like any job (the dispatcher calls these between ``running`` and the
result) with the limits set here, and their text passes :func:`bot.textsafe.clean_generated`
once, here, before it is stored or shown: nothing a model wrote reaches a platform unsanitised.
An enhanced prompt is committed before the image is made, so a retry after a crash makes the
image from the same prompt instead of asking the model again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from bot.domain import MAX_PROMPT_CHARS, Job, Language
from bot.errors import BadRequest, GenerationFailed
from bot.i18n import msg
from bot.image_files import ImageFiles
from bot.ports import Executor
from bot.store import Store
from bot.textsafe import clean_generated

# A detailed prompt is 60-150 words: ~200 tokens for a describe, more room for an enhance.
DESCRIBE_MAX_NEW_TOKENS = 200
ENHANCE_MAX_NEW_TOKENS = 300
VLM_TIME_LIMIT_S = 60.0  # a describe is ~4 s on an H100 (BENCHMARKS.md); this stops a runaway
# The text is a prompt a user may imagine at once, so it must fit a prompt's limit.
MAX_VLM_CHARS = MAX_PROMPT_CHARS


@dataclass(frozen=True, slots=True)
class VlmLimits:
    describe_tokens: int = DESCRIBE_MAX_NEW_TOKENS
    enhance_tokens: int = ENHANCE_MAX_NEW_TOKENS
    time_limit_s: float = VLM_TIME_LIMIT_S


def require(executor: Executor, feature: str) -> None:
    """Refuse at intake what the loaded model cannot do (the reason is in ``turbobot doctor``)."""
    if not executor.vlm_availability().available(feature):
        raise BadRequest(
            msg("engine.feature_unavailable", feature=msg(f"engine.feature.{feature}"))
        )


class VlmJobs:
    def __init__(
        self, executor: Executor, store: Store, files: ImageFiles, limits: VlmLimits
    ) -> None:
        self._executor = executor
        self._store = store
        self._files = files
        self._limits = limits

    async def describe(self, job: Job) -> str:
        """The sanitised prompt the VLM wrote for the job's input image."""
        path = self._files.find(job.spec.init_image)
        if path is None:
            raise GenerationFailed(msg("core.describe_image_missing"))
        image = await asyncio.to_thread(path.read_bytes)
        raw = await self._executor.describe(
            job.id,
            image,
            job.spec.language or Language.EN,
            max_new_tokens=self._limits.describe_tokens,
            time_limit_s=self._limits.time_limit_s,
        )
        return _usable(raw)

    async def enhanced(self, job: Job) -> Job:
        """``job`` with its enhanced prompt in ``text`` (asked for and committed once)."""
        if not job.spec.enhance or job.text is not None:
            return job
        raw = await self._executor.enhance(
            job.id,
            job.spec.prompt,
            max_new_tokens=self._limits.enhance_tokens,
            time_limit_s=self._limits.time_limit_s,
        )
        text = clean_generated(raw, max_chars=MAX_VLM_CHARS) or job.spec.prompt
        await self._store.update_job(job.id, text=text)
        return replace(job, text=text)


def image_spec(job: Job) -> Job:
    """The job as the engine must make it: an enhanced prompt replaces the user's."""
    if job.spec.enhance and job.text:
        return replace(job, spec=replace(job.spec, prompt=job.text))
    return job


def _usable(raw: str) -> str:
    text = clean_generated(raw, max_chars=MAX_VLM_CHARS)
    if not text:
        raise GenerationFailed(msg("core.describe_empty"))
    return text
