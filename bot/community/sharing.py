"""Sharing an image to its server's showcase channel, with credit, and the gallery of shares."""

from __future__ import annotations

import math

from bot.community.blocks import Blocks
from bot.community.privacy import Privacy
from bot.community.settings import ServerSettingsBook
from bot.domain import GalleryItem, Job, JobState, Platform, Requester, ShareTicket
from bot.errors import BadRequest, NotAllowed, NotFound
from bot.i18n import msg
from bot.ports import Clock, GalleryPeriod, GallerySort
from bot.store import NewShare, Store
from bot.texts import YOU_OPTED_OUT

NO_SHOWCASE = msg("core.no_showcase")
OPTED_OUT = YOU_OPTED_OUT
MAX_GALLERY_PAGE = 50
_PERIOD_S: dict[str, float] = {"week": 7 * 86400.0, "month": 30 * 86400.0, "all": math.inf}


class Sharing:
    """Shares and the gallery; who may share is checked here, once."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: ServerSettingsBook,
        blocks: Blocks,
        privacy: Privacy,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._blocks = blocks
        self._privacy = privacy

    async def share(self, requester: Requester, job: Job) -> ShareTicket:
        if job.requester.user_key != requester.user_key:
            raise NotAllowed(msg("core.share_not_owner"))
        server_key = job.requester.server_key
        if server_key is None or job.requester.server_id is None:
            raise BadRequest(msg("core.share_needs_server"))
        await self._blocks.check_not_blocked(requester, server_key)
        if job.state is not JobState.POSTED:
            raise BadRequest(msg("core.share_not_finished", job=job.id))
        privacy = await self._privacy.privacy(requester)
        if privacy.share_opt_out:
            raise NotAllowed(OPTED_OUT)
        server = await self._settings.get(job.requester.platform, job.requester.server_id)
        if server.showcase_channel_id is None:
            raise BadRequest(NO_SHOWCASE)
        row = await self._store.community.add_share(
            NewShare(
                job.id,
                job.requester.platform,
                server_key,
                requester.user_key,
                server.showcase_channel_id,
                self._clock.now(),
            )
        )
        return ShareTicket(
            share_id=row.share_id,
            job=job,
            channel_id=row.channel_id,
            credit_name=job.requester.display_name,
            show_details=not privacy.hide_details,
            message_id=row.message_id,
        )

    async def shared_in(self, job_id: int) -> str | None:
        """The showcase channel the job is shared to (and visible in), if any."""
        return await self._store.community.visible_share_channel(job_id)

    async def record_share(self, share_id: int, message_id: str) -> None:
        if not await self._store.community.share_exists(share_id):
            raise NotFound(msg("core.no_such_share", share=share_id))
        await self._store.community.set_share_message(share_id, message_id)

    async def share_by_message(self, platform: Platform, message_id: str) -> int | None:
        return await self._store.community.share_by_message(platform, message_id)

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
        if sort not in ("recent", "top") or period not in _PERIOD_S:
            raise BadRequest(msg("core.bad_gallery"))
        return await self._store.community.gallery(
            f"{platform}:{server_id}",
            self._clock.now() - _PERIOD_S[period],
            by_score=sort == "top",
            limit=max(1, min(limit, MAX_GALLERY_PAGE)),
            offset=max(0, offset),
        )
