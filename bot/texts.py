"""User-facing texts of the core that are used in more than one place, as catalogue messages.

Each says what happened and, where there is one, what to do next; the words (English and
Chinese) are in ``bot/locale`` under the ``core.`` keys. Errors raised from validation and
admission carry their own message at the raise site (see ``bot.errors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bot.domain import Job, JobState, Language, RefusedStyle, StyleChanges, VlmAvailability
from bot.i18n import Joined, Message, msg, t

SHUTTING_DOWN = msg("core.shutting_down")
IMAGE_MISSING = msg("core.image_missing")
NOT_OWNER_DELETE = msg("core.not_owner_delete")
OPERATORS_ONLY = msg("core.operators_only")


def no_such_job(job_id: int) -> Message:
    return msg("core.no_such_job", job=job_id)


def not_yours_to_cancel(job_id: int) -> Message:
    return msg("core.not_yours_to_cancel", job=job_id)


def nothing_to_cancel() -> Message:
    return msg("core.nothing_to_cancel")


# A job's state as users read it (/history, /show, Info), never the enum's English value.
STATE_WORDS: Mapping[JobState, Message] = MappingProxyType({
    JobState.QUEUED: msg("state.queued"),
    JobState.RUNNING: msg("state.running"),
    JobState.GENERATED: msg("state.generated"),
    JobState.POSTING: msg("state.posting"),
    JobState.POSTED: msg("state.posted"),
    JobState.FAILED: msg("state.failed"),
    JobState.CANCELLED: msg("state.cancelled"),
})  # fmt: skip


def state_word(state: JobState) -> Message:
    return STATE_WORDS[state]


def shown_prompt(job: Job, lang: Language | str | None = Language.EN) -> str:
    """The prompt as its readers may see it: for a job whose source hides its details, a
    placeholder in ``lang`` (``bot.access`` has already replaced the real prompt)."""
    return t("core.prompt_hidden", lang) if job.details_hidden else job.spec.prompt


def cannot_cancel(job_id: int, state: JobState) -> Message:
    return msg("core.cannot_cancel", job=job_id, state=state_word(state))


def not_finished(job_id: int) -> Message:
    return msg("core.not_finished", job=job_id)


def crashed_too_often(attempts: int, error: str) -> Message:
    return msg("core.crashed_too_often", attempts=attempts, error=error)


def stopped_too_often(attempts: int) -> Message:
    return msg("core.stopped_too_often", attempts=attempts)


def engine_error(kind: str) -> Message:
    return msg("core.engine_error", kind=kind)


def not_posted(why: Message | str) -> Message:
    return msg("core.not_posted", why=why)


def maybe_posted(job_id: int) -> Message:
    return msg("core.maybe_posted", job=job_id)


# --- who may do what with a job (bot.access) ---
OWNER_OPTED_OUT = msg("core.owner_opted_out")
REMIX_NOT_SHARED = msg("core.remix_not_shared")
YOU_OPTED_OUT = msg("core.opted_out")
SHARE_OUTSIDE_OFF = msg("core.share_outside_off")
DETAILS_HIDDEN = msg("core.details_hidden")


def showing_too_fast(wait: Message | str) -> Message:
    return msg("core.showing_too_fast", wait=wait)


def bad_number(what: str, low: int, high: int) -> Message:
    return msg("core.bad_number", what=what, low=low, high=high)


def styles_rescanned(changes: StyleChanges) -> Message:
    """The answer to ``/styles rescan``; an empty list shows as a dash."""

    def names(items: tuple[str, ...]) -> str:
        return ", ".join(items) or "-"

    found = msg(
        "core.styles_rescanned",
        added=names(changes.added),
        removed=names(changes.removed),
        styles=names(changes.styles),
    )
    if not changes.refused:
        return found
    refused = Joined(tuple(_refused_item(r) for r in changes.refused))
    return msg("core.styles_rescanned_refused", found=found, refused=refused)


def refused_reason(style: RefusedStyle) -> Message:
    """Why a style folder was refused, in the catalogue's words."""
    return msg(style.reason_key, **dict(style.reason_params))


def _refused_item(style: RefusedStyle) -> Message:
    return msg("core.style_refused", name=style.name, reason=refused_reason(style))


def vlm_lines(availability: VlmAvailability, lang: Language | str) -> list[str]:
    """One line per VLM feature for ``/help``: available or not. The reason names files and
    settings, so users are pointed to ``turbobot doctor`` (the operator's) instead."""
    return [
        t(
            "vlm.help.available" if f.available else "vlm.help.unavailable",
            lang,
            feature=msg(f"engine.feature.{f.name}"),
        )
        for f in availability.features
    ]
