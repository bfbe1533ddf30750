"""Moderation by a server's admins: blocking users, and the audit log of what admins did."""

from __future__ import annotations

import hashlib

from bot.community.admin import require_admin
from bot.domain import AuditEntry, Job, Requester
from bot.errors import NotAllowed
from bot.i18n import msg
from bot.lru import LruDict
from bot.ports import Clock
from bot.store import AuditNote, Store

BLOCKED = msg("core.blocked")
MAX_AUDIT_PAGE = 100


def user_hash(server_key: str, user_key: str) -> str:
    """How a blocked user is stored: no readable id, yet the same user maps to the same row."""
    return hashlib.sha256(f"{server_key}\n{user_key}".encode()).hexdigest()


class Blocks:
    """Who is blocked where (cached per server), and the audit log that records it."""

    def __init__(self, store: Store, clock: Clock, max_cached: int) -> None:
        self._store = store
        self._clock = clock
        # Read again from the database when evicted.
        self._blocked: LruDict[str, set[str]] = LruDict(max_cached)

    def __len__(self) -> int:
        return len(self._blocked)

    async def check_not_blocked(self, requester: Requester, server_key: str | None = None) -> None:
        """NotAllowed when ``requester`` is blocked in ``server_key`` (default: where they are)."""
        key = server_key or requester.server_key
        if key is None:
            return
        if key not in self._blocked:
            self._blocked.setdefault(key, await self._store.servers.blocked_hashes(key))
        if user_hash(key, requester.user_key) in self._blocked[key]:
            raise NotAllowed(BLOCKED)

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        server_key = require_admin(actor, is_admin)
        target = Requester(actor.platform, user_id, user_id, actor.channel_id, actor.server_id)
        action = "block" if blocked else "unblock"
        note = self._note(server_key, actor, action, f"user {user_id}")
        await self._store.servers.set_blocked(user_hash(server_key, target.user_key), blocked, note)
        self._blocked.pop(server_key, None)  # reloaded on next use

    async def audit_delete(self, actor: Requester, job: Job) -> None:
        """An admin deleted someone else's image."""
        if actor.server_key is None:
            return
        target = f"job #{job.id} of user {job.requester.user_id}"
        await self._store.servers.audit(self._note(actor.server_key, actor, "delete", target))

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        server_key = require_admin(actor, is_admin)
        return await self._store.servers.audit_log(server_key, max(1, min(limit, MAX_AUDIT_PAGE)))

    def _note(self, server_key: str, actor: Requester, action: str, target: str) -> AuditNote:
        return AuditNote(self._clock.now(), server_key, actor.user_id, action, target)
