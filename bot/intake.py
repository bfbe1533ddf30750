"""Admission: who gets in, and how many of their jobs may wait.

:class:`Admission` owns the state every new job is checked against: the open/closed intake,
the rate buckets and default styles of recent users (cached, bounded), and the count of jobs
each user and server has queued or running ("held"). The rules themselves are the pure
functions of :mod:`bot.admission`; blocks and per-server limits come from the community.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from bot import texts
from bot.admission import (
    Bucket,
    Limits,
    Pending,
    check_caps,
    full_bucket,
    take_token,
    tokens_for,
)
from bot.community import Community, server_limits
from bot.domain import GenerationSpec, Job, JobState, Requester, ServerSettings
from bot.errors import ShuttingDown
from bot.lru import LruDict
from bot.ports import Clock
from bot.store import Store

log = logging.getLogger(__name__)


class Admission:
    def __init__(
        self,
        store: Store,
        community: Community,
        clock: Clock,
        limits: Limits,
        max_cached_users: int,
    ) -> None:
        self._store = store
        self._community = community
        self._clock = clock
        self.limits = limits
        self.open = True
        self._buckets: LruDict[str, Bucket] = LruDict(max_cached_users)
        self._default_styles: LruDict[str, str | None] = LruDict(max_cached_users)
        self._loading: dict[str, asyncio.Task[tuple[Bucket | None, str | None]]] = {}
        self._held: dict[int, Job] = {}
        self._held_total = 0  # images of every held job
        self._held_user: Counter[str] = Counter()
        self._held_server: Counter[str] = Counter()

    def check_open(self) -> None:
        if not self.open:
            raise ShuttingDown(texts.SHUTTING_DOWN)

    async def admit(self, requester: Requester) -> ServerSettings | None:
        """The requester's server settings, once it is sure they are not blocked there."""
        await self._community.check_not_blocked(requester)
        return await self._community.settings_for(requester)

    async def reserve(
        self,
        requester: Requester,
        spec: GenerationSpec,
        *,
        parent: int | None,
        server: ServerSettings | None,
        details_hidden: bool,
        eta_of_next: Callable[[], float],
    ) -> Job:
        """Check the caps, spend a token and commit the new job's row; the job, held."""
        user = requester.user_key
        limits = server_limits(self.limits, server)
        bucket = await self._bucket(user)
        # From here to the reservation nothing awaits, so concurrent submits see each other.
        self.check_open()
        pending = Pending(
            user=self._held_user[user],
            server=self._held_server[requester.server_key] if requester.server_key else 0,
            total=self._held_total,
        )
        cost = spec.cost
        check_caps(pending, limits, eta_of_next(), cost)
        now = self._clock.now()
        spent = take_token(bucket, now, limits, cost)
        job = Job(
            id=self._store.next_job_id(),
            requester=requester,
            spec=spec,
            state=JobState.QUEUED,
            created_at=now,
            parent_job_id=parent,
            details_hidden=details_hidden,
        )
        self._buckets[user] = spent
        self.hold(job)
        try:
            await self._store.add_job(job, user, spent)
        except Exception:
            self.release(job.id)
            # Give the tokens back: the user got nothing for them.
            current = self._buckets[user]
            self._buckets[user] = Bucket(
                min(self.limits.burst, current.tokens + tokens_for(cost, limits)),
                current.updated_at,
            )
            raise
        return job

    @property
    def held_count(self) -> int:
        return len(self._held)

    def hold(self, job: Job) -> None:
        """Count ``job`` against its user's and server's caps (queued or running)."""
        if job.id in self._held:
            return
        cost = job.spec.cost  # the caps count images, not jobs
        self._held[job.id] = job
        self._held_total += cost
        self._held_user[job.requester.user_key] += cost
        if job.requester.server_key:
            self._held_server[job.requester.server_key] += cost

    def release(self, job_id: int) -> None:
        """The job left the queue and the executor: it no longer counts against the caps."""
        job = self._held.pop(job_id, None)
        if job is None:
            return
        cost = job.spec.cost
        self._held_total -= cost
        _decrement(self._held_user, job.requester.user_key, cost)
        if job.requester.server_key:
            _decrement(self._held_server, job.requester.server_key, cost)

    async def default_style(self, user_key: str) -> str | None:
        if user_key not in self._default_styles:
            await self._load_user(user_key)
        return self._default_styles.get(user_key)

    async def set_default_style(self, user_key: str, style: str | None) -> None:
        await self._store.set_default_style(user_key, style)
        self._default_styles[user_key] = style

    def forget_user(self, user_key: str) -> None:
        """Drop the cached default style. The rate buckets stay (in memory, and in the database
        under a digest of the user's key): forgetting is no way around the rate limit."""
        self._default_styles.pop(user_key, None)

    def cache_sizes(self) -> dict[str, int]:
        return {
            "buckets": len(self._buckets),
            "default_styles": len(self._default_styles),
            "held_users": len(self._held_user),
            "held_servers": len(self._held_server),
        }

    async def _bucket(self, user_key: str) -> Bucket:
        if user_key not in self._buckets:
            await self._load_user(user_key)
        return self._buckets[user_key]

    async def _load_user(self, user_key: str) -> None:
        """Cache a user's stored bucket and default style: one read, shared by concurrent calls."""
        loading = self._loading.get(user_key)
        if loading is None:
            loading = asyncio.get_running_loop().create_task(self._store.user_state(user_key))
            self._loading[user_key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(user_key, None))
        bucket, style = await asyncio.shield(loading)
        # Another submit may have loaded (and spent from) the bucket while this one waited.
        if user_key not in self._buckets:
            self._buckets[user_key] = bucket or full_bucket(self._clock.now(), self.limits)
        self._default_styles.setdefault(user_key, style)


def _decrement(counter: Counter[str], key: str, by: int = 1) -> None:
    """``by`` less for ``key``; a key at zero goes, so the counter holds only users with jobs."""
    counter[key] -= by
    if counter[key] <= 0:
        del counter[key]
