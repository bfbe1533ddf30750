"""Who may do what with an existing job: the one rule, for every platform and every action.

Job ids are global (one counter for every server and platform), so a forged button or command
can name any job. Every action on an existing job asks :func:`check_access` (through
``Core.job_for``); adapters only render the answer.

* The owner may do everything with their own job.
* Anyone else only with a job made in the *same* server or group (never across servers or
  platforms, never from a private chat or the console), or shared to the showcase chat they
  are in (a Telegram showcase is a chat of its own), and only while it is not deleted.
* To others, an owner who opted out of sharing offers nothing to show again, derive or remix;
  remixing someone else's image also needs it shared to the showcase.
* Sending an image into any chat outside its server (Telegram inline mode) is the owner's
  alone, and only while they have not opted out of sharing and the server where it was made
  allows sharing outside (``allow_external_share``).
* An owner who hides their details (``/privacy``) hides the prompt from others: Info is refused,
  and what others get to see (or derive) carries no prompt. A job derived from such an image is
  marked ``details_hidden`` so its own owner never sees the copied prompt either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot import texts
from bot.domain import Job, JobAction, Requester, UserPrivacy
from bot.errors import NotAllowed, NotFound

HIDDEN_PROMPT = "(prompt hidden by its author)"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rule needs to know about a job beyond the row itself."""

    deleted: bool
    owner: UserPrivacy
    shared_in: str | None  # the showcase channel (chat) it is shared to, if it is
    outside_allowed: bool = True  # its server lets images be shared outside (no server: yes)

    @property
    def shared(self) -> bool:
        return self.shared_in is not None


def is_owner(requester: Requester, job: Job) -> bool:
    return job.requester.user_key == requester.user_key


def check_access(requester: Requester, job: Job, action: JobAction, facts: Facts) -> Job:
    """The job as ``requester`` may see it for ``action``; NotFound / NotAllowed otherwise."""
    if facts.deleted:
        raise NotFound(texts.no_such_job(job.id))
    if action is JobAction.SHARE_OUTSIDE:
        return _share_outside(requester, job, facts)
    if is_owner(requester, job):
        return outward(job)
    if not _same_place(requester, job, facts):
        # Not "not allowed": whether a job exists elsewhere is none of the requester's business.
        raise NotFound(texts.no_such_job(job.id))
    if facts.owner.share_opt_out and action is not JobAction.VIEW:
        raise NotAllowed(texts.OWNER_OPTED_OUT)
    if action is JobAction.REMIX and not facts.shared:
        raise NotAllowed(texts.REMIX_NOT_SHARED)
    if facts.owner.hide_details:
        if action is JobAction.DETAILS:
            raise NotAllowed(texts.DETAILS_HIDDEN)
        return hidden(job)
    return outward(job)


def _share_outside(requester: Requester, job: Job, facts: Facts) -> Job:
    if not is_owner(requester, job):
        raise NotFound(texts.no_such_job(job.id))
    if facts.owner.share_opt_out:
        raise NotAllowed(texts.YOU_OPTED_OUT)
    if not facts.outside_allowed:
        raise NotAllowed(texts.SHARE_OUTSIDE_OFF)
    return outward(job)


def _same_place(requester: Requester, job: Job, facts: Facts) -> bool:
    """In the server the job was made in, or in the showcase chat it was shared to."""
    if requester.server_key is not None and requester.server_key == job.requester.server_key:
        return True
    return (
        facts.shared_in is not None
        and requester.platform == job.requester.platform
        and requester.channel_id == facts.shared_in
    )


def hidden(job: Job) -> Job:
    """``job`` without its prompt (and negative and enhanced prompt), flagged as hidden."""
    spec = replace(job.spec, prompt=HIDDEN_PROMPT, negative_prompt=None)
    text = None if job.text is None else HIDDEN_PROMPT
    return replace(job, spec=spec, details_hidden=True, text=text)


def outward(job: Job) -> Job:
    """How a job leaves the core for an adapter: a hidden prompt stays hidden."""
    return hidden(job) if job.details_hidden else job
