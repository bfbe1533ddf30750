"""User-facing texts of the core, in one place (adapters show them as they are).

Each says what happened and, where there is one, what to do next. Errors raised from
validation and admission carry their own text at the raise site (see ``bot.errors``).
"""

from __future__ import annotations

SHUTTING_DOWN = "The bot is restarting and takes no new images right now."
IMAGE_MISSING = "The image file is missing, so it cannot be posted."
NOT_OWNER_DELETE = "Only the person who made this image (or an admin) can delete it."


def no_such_job(job_id: int) -> str:
    return f"There is no job #{job_id}."


def not_yours_to_cancel(job_id: int) -> str:
    return f"Job #{job_id} is not yours to cancel."


def cannot_cancel(job_id: int, state: str) -> str:
    return f"Job #{job_id} is {state}; only waiting jobs can be cancelled."


def not_finished(job_id: int) -> str:
    return f"Job #{job_id} is not finished yet; cancel it instead."


def crashed_too_often(attempts: int, error: str) -> str:
    return (
        f"The image could not be made after {attempts} attempts (the generator crashed: {error})."
    )


def stopped_too_often(attempts: int) -> str:
    return (
        f"The image could not be made: the bot stopped {attempts} times while making it, "
        "so it was given up."
    )


def not_posted(why: str) -> str:
    return f"The image was made but could not be posted ({why})."


def maybe_posted(job_id: int) -> str:
    return (
        f"The bot restarted while posting image #{job_id}, so it may not have arrived. "
        "It is not sent twice; find it with /history."
    )
