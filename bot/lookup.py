"""Existing jobs as a requester may see them: the access rule (:mod:`bot.access`) applied with
the facts it needs from the store and the community, the re-post rate limit, the parent chain
(lineage) and the remix credit."""

from __future__ import annotations

from bot import access, texts
from bot.admission import Limits, full_bucket, take_token, wait_text
from bot.board import Board
from bot.community import Community
from bot.domain import Credit, Job, JobAction, Requester
from bot.errors import NotAllowed, NotFound, RateLimited, TurbobotError
from bot.ports import Clock
from bot.store import Store
from bot.validation import check_job_id

# Posting an image again (Discord /show, Telegram "Original file") costs a token of its own.
SHOW_LIMITS = Limits(
    rate_per_minute=4.0, burst=5, max_pending_per_user=1, max_pending_per_server=1, max_queue=1
)
_SHOW_BUCKET = "show:"  # prefix of the re-post bucket's key in rate_buckets
MAX_LINEAGE = 50  # parents /show lists at most (a chain of remixes can be long)


class Lookup:
    def __init__(self, store: Store, board: Board, community: Community, clock: Clock) -> None:
        self._store = store
        self._board = board
        self._community = community
        self._clock = clock

    async def job_for(self, requester: Requester, job_id: int, action: JobAction) -> Job:
        """The job as ``requester`` may see it for ``action``; ``SHOW`` spends a re-post token."""
        _, seen = await self.access(requester, job_id, action)
        if action is JobAction.SHOW:
            await self._take_show_token(requester.user_key)
        return seen

    async def access(self, requester: Requester, job_id: int, action: JobAction) -> tuple[Job, Job]:
        """(the job as stored, the job as ``requester`` may see it) or NotFound / NotAllowed."""
        job = await self._store.get_job(check_job_id(job_id))
        if job is None:
            raise NotFound(texts.no_such_job(job_id))
        job = self._board.get(job_id) or job
        facts = access.Facts(
            deleted=await self._store.is_deleted(job_id),
            owner=await self._community.privacy(job.requester),
            shared_in=await self._community.shared_in(job_id),
            outside_allowed=action is not JobAction.SHARE_OUTSIDE
            or await self._community.outside_allowed(job.requester),
        )
        return job, access.check_access(requester, job, action, facts)

    async def lineage(self, requester: Requester, job_id: int) -> list[Job]:
        """The jobs ``job_id`` was made from, nearest first, as ``requester`` may see each
        (a hidden prompt stays hidden); the chain stops at the first they may not see."""
        await self.access(requester, job_id, JobAction.VIEW)
        chain = []
        for parent_id in await self._store.parent_ids(job_id, MAX_LINEAGE):
            try:
                _, seen = await self.access(requester, parent_id, JobAction.VIEW)
            except (NotFound, NotAllowed):
                break
            chain.append(seen)
        return chain

    async def credit_for(self, job: Job) -> Credit | None:
        """Whom a job made from somebody else's image credits (None: nobody to credit)."""
        if job.parent_job_id is None:
            return None
        try:
            parent = await self.job_for(job.requester, job.parent_job_id, JobAction.VIEW)
        except TurbobotError:
            return None  # the original was forgotten (or is out of reach): no credit
        if access.is_owner(job.requester, parent):
            return None  # a reroll or variation of one's own image
        return Credit(job_id=parent.id, name=parent.requester.display_name)

    async def visible_job(self, job_id: int) -> Job:
        """A job that exists and is not deleted (no permission check), or NotFound."""
        job = await self._store.get_job(check_job_id(job_id))
        if job is None or await self._store.is_deleted(job_id):
            raise NotFound(texts.no_such_job(job_id))
        return job

    async def any_job(self, job_id: int) -> Job:
        """A job by id, unfinished (its latest version) or stored, with no permission check."""
        job = self._board.get(check_job_id(job_id)) or await self._store.get_job(job_id)
        if job is None:
            raise NotFound(texts.no_such_job(job_id))
        return job

    async def _take_show_token(self, user_key: str) -> None:
        key = _SHOW_BUCKET + user_key
        bucket = await self._store.bucket(key) or full_bucket(self._clock.now(), SHOW_LIMITS)
        try:
            spent = take_token(bucket, self._clock.now(), SHOW_LIMITS)
        except RateLimited as err:
            wait = wait_text(err.retry_after)
            raise RateLimited(texts.showing_too_fast(wait), err.retry_after) from None
        await self._store.save_bucket(key, spent)
