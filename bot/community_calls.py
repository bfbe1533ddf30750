"""The :class:`bot.ports.CommunityApi` half of the core's facade (:class:`bot.service.Core`
inherits it): each call cleans what came from the platform, asks :mod:`bot.community` (where
the rules live), and hands back only what :mod:`bot.access` lets adapters see."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot import access, community
from bot.board import Board
from bot.community import Community
from bot.delivery import Delivery
from bot.domain import (
    AuditEntry,
    Credit,
    GalleryItem,
    Job,
    Platform,
    Requester,
    ServerSettings,
    SettingsChange,
    ShareTicket,
    UserPrivacy,
    VoteResult,
)
from bot.errors import NotAllowed
from bot.image_files import ImageFiles
from bot.intake import Admission
from bot.lookup import Lookup
from bot.ports import Executor, GalleryPeriod, GallerySort
from bot.validation import check_job_id, clean_change, clean_requester, sanitise_text

log = logging.getLogger("bot.service")  # the facade's own logger, as before the split

MAX_PAGE_ROWS = 100
MAX_OFFSET = 1_000_000  # far beyond any history; keeps a forged page number inside SQLite's ints


def page_window(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` and ``offset`` from a user's page, clamped to what a page can be."""
    return max(0, min(limit, MAX_PAGE_ROWS)), max(0, min(offset, MAX_OFFSET))


class CommunityCalls:
    """Server settings, sharing, votes, gallery, privacy, blocks and the audit log."""

    # Set by Core.__init__: the parts these calls go through.
    _executor: Executor
    _community: Community
    _lookup: Lookup
    _delivery: Delivery
    _board: Board
    _files: ImageFiles
    _admission: Admission

    async def server_settings(self, platform: Platform, server_id: str) -> ServerSettings:
        return await self._community.server_settings(platform, sanitise_text(server_id))

    async def update_server_settings(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool
    ) -> ServerSettings:
        known = [s.name for s in self._executor.styles()]
        actor, change = clean_requester(actor), clean_change(change)
        return await self._community.update_settings(actor, change, is_admin=is_admin, known=known)

    async def share(self, requester: Requester, job_id: int) -> ShareTicket:
        requester = clean_requester(requester)
        ticket = await self._community.share(requester, await self._lookup.visible_job(job_id))
        return replace(ticket, job=access.outward(ticket.job))

    async def record_share(self, share_id: int, message_id: str) -> None:
        await self._community.record_share(check_job_id(share_id), sanitise_text(message_id))

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        return await self._community.share_by_message(platform, sanitise_text(message_id))

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        return await self._community.vote(clean_requester(voter), check_job_id(share_id), value)

    async def toggle_vote(self, voter: Requester, share_id: int) -> VoteResult:
        return await self._community.toggle_vote(clean_requester(voter), check_job_id(share_id))

    async def credit_for(self, job: Job) -> Credit | None:
        """Whom a job made from somebody else's image credits (None: nobody to credit)."""
        return await self._lookup.credit_for(job)

    async def gallery(
        self,
        platform: Platform,
        server_id: str,
        *,
        sort: GallerySort = "recent",
        period: GalleryPeriod = "all",
        limit: int = 10,
        offset: int = 0,
    ) -> list[GalleryItem]:
        limit, offset = page_window(limit, offset)
        items = await self._community.gallery(
            platform, sanitise_text(server_id), sort=sort, period=period, limit=limit, offset=offset
        )
        return [replace(i, job=access.outward(i.job)) for i in items]

    async def privacy(self, requester: Requester) -> UserPrivacy:
        return await self._community.privacy(clean_requester(requester))

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> UserPrivacy:
        requester = clean_requester(requester)
        updated, posts = await self._community.set_privacy(
            requester, share_opt_out=share_opt_out, hide_details=hide_details
        )
        self._delivery.delete_posts(requester.platform, posts)
        return updated

    async def forget(self, requester: Requester) -> int:
        requester = clean_requester(requester)
        if self._board.has_active(requester.user_key):
            raise NotAllowed(community.FORGET_BUSY)
        count, paths, posts = await self._community.forget(requester)
        self._delivery.delete_posts(requester.platform, posts)
        await self._files.remove_quietly(paths)
        self._admission.forget_user(requester.user_key)
        log.info("forgot a user: %d job(s)", count)
        return count

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        actor, user_id = clean_requester(actor), sanitise_text(user_id)
        await self._community.set_blocked(actor, user_id, blocked, is_admin=is_admin)

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        actor = clean_requester(actor)
        return await self._community.audit_log(actor, is_admin=is_admin, limit=limit)
