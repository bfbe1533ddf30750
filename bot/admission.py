"""Admission: may this user queue one more job right now? Pure functions over plain numbers.

A per-user token bucket limits the rate (``rate_per_minute``, ``rate_burst``); caps limit how
many jobs wait per user, per server and in total. Each refusal says why and when to retry.
Buckets are persisted by the store, so a restart does not hand out fresh bursts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.errors import QueueFull, RateLimited
from bot.i18n import Message, msg


@dataclass(frozen=True, slots=True)
class Bucket:
    """Tokens left for one user at ``updated_at`` (wall-clock seconds)."""

    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Limits:
    rate_per_minute: float
    burst: int
    max_pending_per_user: int
    max_pending_per_server: int
    max_queue: int


@dataclass(frozen=True, slots=True)
class Pending:
    """Jobs not yet generated (queued or running): for the user, their server, everyone."""

    user: int
    server: int
    total: int


def full_bucket(now: float, limits: Limits) -> Bucket:
    return Bucket(float(limits.burst), now)


def refill(bucket: Bucket, now: float, limits: Limits) -> Bucket:
    # A clock that went backwards (NTP step, restored backup) must not drain the bucket.
    elapsed = max(0.0, now - bucket.updated_at)
    tokens = min(float(limits.burst), bucket.tokens + elapsed * limits.rate_per_minute / 60.0)
    return Bucket(tokens, now)


def take_token(bucket: Bucket, now: float, limits: Limits, cost: int = 1) -> Bucket:
    """The bucket after spending ``cost`` tokens (a job's images: ``GenerationSpec.cost``),
    or :class:`RateLimited` with the wait. A cost above the burst is charged as the burst, so
    a big job waits for a full bucket instead of never fitting."""
    need = tokens_for(cost, limits)
    current = refill(bucket, now, limits)
    if current.tokens >= need:
        return Bucket(current.tokens - need, now)
    wait = (need - current.tokens) * 60.0 / limits.rate_per_minute
    raise RateLimited(msg("core.rate_limited", wait=wait_text(wait)), retry_after=wait)


def tokens_for(cost: int, limits: Limits) -> float:
    """Tokens a job of ``cost`` images spends: one each, at most a full bucket."""
    return float(max(1, min(cost, limits.burst)))


def check_caps(pending: Pending, limits: Limits, eta_s: float, cost: int = 1) -> None:
    """:class:`QueueFull` when a job of ``cost`` images does not fit under a cap (``pending``
    counts images too); ``eta_s`` is when the next job should finish. A job alone may exceed a
    cap, so a cap below four never makes a four-image job impossible."""
    when = msg("core.when_about", wait=wait_text(eta_s)) if eta_s > 0 else msg("core.when_moment")
    extra = cost - 1
    if pending.user > 0 and pending.user + extra >= limits.max_pending_per_user:
        raise QueueFull(
            msg("core.user_cap", count=pending.user, limit=limits.max_pending_per_user, when=when)
        )
    if pending.user >= limits.max_pending_per_user:
        raise QueueFull(
            msg("core.user_cap", count=pending.user, limit=limits.max_pending_per_user, when=when)
        )
    if pending.server >= limits.max_pending_per_server:
        raise QueueFull(
            msg(
                "core.server_cap",
                count=pending.server,
                limit=limits.max_pending_per_server,
                when=when,
            )
        )
    if pending.total >= limits.max_queue:
        raise QueueFull(msg("core.queue_full", count=pending.total, when=when))


def wait_text(seconds: float) -> Message:
    """A wait for a user: "5 s" or "3 min", in their language."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return msg("core.seconds", n=whole)
    return msg("core.minutes", n=math.ceil(whole / 60))
