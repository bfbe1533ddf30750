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


def engine_error(kind: str) -> str:
    return f"The image could not be generated ({kind}). Please try again."


def not_posted(why: str) -> str:
    return f"The image was made but could not be posted ({why})."


def maybe_posted(job_id: int) -> str:
    return (
        f"The bot restarted while posting image #{job_id}, so it may not have arrived. "
        "It is not sent twice; find it with /history."
    )


# --- who may do what with a job (bot.access) ---
OWNER_OPTED_OUT = "Its author keeps their images private, so it cannot be shown or remixed."
REMIX_NOT_SHARED = "Only shared images (or your own) can be remixed."
YOU_OPTED_OUT = "You opted out of sharing with /privacy; opt back in to share your images."
SHARE_OUTSIDE_OFF = "This server keeps its images inside: they cannot be shared to other chats."
DETAILS_HIDDEN = "Its author hides the prompt and settings of their images."


def showing_too_fast(wait: str) -> str:
    return f"You are posting images again a bit fast: try again in {wait}."


def bad_number(what: str, low: int, high: int) -> str:
    return f"The {what} must be a whole number from {low} to {high}."
