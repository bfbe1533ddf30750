"""What the worker pool's executor does not carry over the wire yet: the VLM jobs (describe,
enhance) and the image safety check. The pool says so; the core refuses VLM jobs early and
posts images unchecked (fail-open), logging why."""

from __future__ import annotations

import logging

from bot.domain import ImageVerdict, Language, VlmAvailability
from bot.errors import GenerationFailed
from bot.i18n import Message, msg

log = logging.getLogger(__name__)

REMOTE_NO_VLM = "the remote worker pool (TURBOBOT_REDIS_URL) does not run VLM jobs yet"


class NotOnTheWire:
    """The :class:`bot.ports.Executor` calls the remote executor answers "not here"."""

    def vlm_availability(self) -> VlmAvailability:
        return VlmAvailability.none(REMOTE_NO_VLM)

    async def describe(
        self,
        job_id: int,
        image: bytes,
        language: Language,
        *,
        max_new_tokens: int,
        time_limit_s: float,
    ) -> str:
        raise GenerationFailed(_vlm_refused("describe"))

    async def enhance(
        self, job_id: int, prompt: str, *, max_new_tokens: int, time_limit_s: float
    ) -> str:
        raise GenerationFailed(_vlm_refused("enhance"))

    async def check_image(self, job_id: int, jpeg: bytes, policy: str) -> ImageVerdict | None:
        """The workers do not carry the safety check yet (the wire has no such job): None, so
        the core posts the image unchecked and logs that the check is unavailable here."""
        return None


def _vlm_refused(feature: str) -> Message:
    log.info("VLM %s refused: %s", feature, REMOTE_NO_VLM)
    return msg("engine.feature_unavailable", feature=msg(f"engine.feature.{feature}"))
