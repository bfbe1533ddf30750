"""Community features over the store, one module per capability:

- :mod:`~bot.community.admin`: the admin check, once;
- :mod:`~bot.community.settings`: server settings and the rules they set (styles, limits, words);
- :mod:`~bot.community.blocks`: blocking users, the audit log;
- :mod:`~bot.community.privacy`: opting out of sharing, hiding details, ``/forget``;
- :mod:`~bot.community.sharing`: the showcase (with credit) and the gallery;
- :mod:`~bot.community.votes`: votes on shares.

:class:`bot.service.Core` delegates the :class:`bot.ports.CommunityApi` calls to
:class:`Community`, which only hands each to its capability; this package never touches the queue.
"""

from __future__ import annotations

from bot.admission import Limits
from bot.community.admin import ADMINS_ONLY, NO_SERVER, require_admin
from bot.community.blocks import BLOCKED, Blocks, user_hash
from bot.community.privacy import FORGET_BUSY, FORGOTTEN, Privacy
from bot.community.settings import (
    MAX_RATE_PER_MINUTE,
    ServerSettingsBook,
    apply_change,
    check_spec,
    describe_change,
    pick_default,
    server_limits,
    usable_styles,
)
from bot.community.sharing import MAX_GALLERY_PAGE, NO_SHOWCASE, OPTED_OUT, Sharing
from bot.community.votes import Votes
from bot.domain import (
    AuditEntry,
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
from bot.ports import Clock, GalleryPeriod, GallerySort
from bot.store import Store

__all__ = [
    "ADMINS_ONLY",
    "BLOCKED",
    "FORGET_BUSY",
    "FORGOTTEN",
    "MAX_GALLERY_PAGE",
    "MAX_RATE_PER_MINUTE",
    "NO_SERVER",
    "NO_SHOWCASE",
    "OPTED_OUT",
    "Community",
    "apply_change",
    "check_spec",
    "describe_change",
    "pick_default",
    "require_admin",
    "server_limits",
    "usable_styles",
    "user_hash",
]


class Community:
    """The community capabilities behind one object (what :class:`bot.service.Core` holds)."""

    def __init__(
        self, store: Store, clock: Clock, operator: Limits, max_cached: int = 10_000
    ) -> None:
        self.settings = ServerSettingsBook(store, clock, operator, max_cached)
        self.blocks = Blocks(store, clock, max_cached)
        self.privacy_choices = Privacy(store)
        self.sharing = Sharing(store, clock, self.settings, self.blocks, self.privacy_choices)
        self.votes = Votes(store, clock)

    def cache_sizes(self) -> dict[str, int]:
        return {"server_settings": len(self.settings), "blocked": len(self.blocks)}

    # --- settings ------------------------------------------------------------------------

    async def server_settings(self, platform: Platform, server_id: str) -> ServerSettings:
        return await self.settings.get(platform, server_id)

    async def settings_for(self, requester: Requester) -> ServerSettings | None:
        return await self.settings.for_requester(requester)

    async def outside_allowed(self, owner: Requester) -> bool:
        return await self.settings.outside_allowed(owner)

    async def update_settings(
        self, actor: Requester, change: SettingsChange, *, is_admin: bool, known: list[str]
    ) -> ServerSettings:
        return await self.settings.update(actor, change, is_admin=is_admin, known=known)

    # --- blocks and audit ----------------------------------------------------------------

    async def check_not_blocked(self, requester: Requester, server_key: str | None = None) -> None:
        await self.blocks.check_not_blocked(requester, server_key)

    async def set_blocked(
        self, actor: Requester, user_id: str, blocked: bool, *, is_admin: bool
    ) -> None:
        await self.blocks.set_blocked(actor, user_id, blocked, is_admin=is_admin)

    async def audit_delete(self, actor: Requester, job: Job) -> None:
        await self.blocks.audit_delete(actor, job)

    async def audit_log(
        self, actor: Requester, *, is_admin: bool, limit: int = 20
    ) -> list[AuditEntry]:
        return await self.blocks.audit_log(actor, is_admin=is_admin, limit=limit)

    # --- privacy -------------------------------------------------------------------------

    async def privacy(self, requester: Requester) -> UserPrivacy:
        return await self.privacy_choices.privacy(requester)

    async def set_privacy(
        self,
        requester: Requester,
        *,
        share_opt_out: bool | None = None,
        hide_details: bool | None = None,
    ) -> tuple[UserPrivacy, list[tuple[str, str]]]:
        return await self.privacy_choices.set_privacy(
            requester, share_opt_out=share_opt_out, hide_details=hide_details
        )

    async def forget(self, requester: Requester) -> tuple[int, list[str], list[tuple[str, str]]]:
        return await self.privacy_choices.forget(requester)

    # --- sharing, votes, gallery ---------------------------------------------------------

    async def share(self, requester: Requester, job: Job) -> ShareTicket:
        return await self.sharing.share(requester, job)

    async def shared_in(self, job_id: int) -> str | None:
        return await self.sharing.shared_in(job_id)

    async def record_share(self, share_id: int, message_id: str) -> None:
        await self.sharing.record_share(share_id, message_id)

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        return await self.sharing.share_by_message(platform, message_id)

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
        return await self.sharing.gallery(
            platform, server_id, sort=sort, period=period, limit=limit, offset=offset
        )

    async def vote(self, voter: Requester, share_id: int, value: int) -> int:
        return await self.votes.vote(voter, share_id, value)

    async def toggle_vote(self, voter: Requester, share_id: int) -> VoteResult:
        return await self.votes.toggle_vote(voter, share_id)

    async def my_vote(self, voter: Requester, share_id: int) -> int:
        return await self.votes.my_vote(voter, share_id)
