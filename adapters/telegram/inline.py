"""Inline mode (``@bot words`` in any chat): the user's own posted images, shared by Telegram's
cached ``file_id`` (no re-upload). Which of them may leave their group is the core's rule."""

from __future__ import annotations

import re

from telegram import InlineQueryResultCachedPhoto, Update

from adapters.telegram import texts
from adapters.telegram import updates as tg
from adapters.telegram.community import Community
from adapters.telegram.status import StatusMessages
from adapters.telegram.updates import Ctx, Ignored
from bot.domain import Job, Requester
from bot.ports import BotApi

INLINE_RESULTS = 50  # Telegram's maximum per answer
_JOB_REF = re.compile(r"#?(\d{1,12})")


class InlineShare:
    """Answers inline queries."""

    def __init__(self, core: BotApi, community: Community, status: StatusMessages) -> None:
        self._core = core
        self._community = community
        self._status = status

    async def answer(self, update: Update, context: Ctx) -> None:
        query = update.inline_query
        if query is None:
            raise Ignored
        shared = await self._shareable(tg.requester(update), query.query.strip())
        lang = await self._community.lang(update)  # no group here: the user's own language
        results = [
            InlineQueryResultCachedPhoto(
                id=str(job.id), photo_file_id=ref, caption=texts.caption(job, None, lang)
            )
            for job, ref in shared[:INLINE_RESULTS]
            if not job.spoiler  # a cached inline photo cannot carry a spoiler: not offered
        ]
        await query.answer(results, cache_time=5, is_personal=True)

    async def _shareable(self, requester: Requester, text: str) -> list[tuple[Job, str]]:
        """The requester's posted images matching ``text`` ("#42" is job 42), newest first."""
        match = _JOB_REF.fullmatch(text) if text.startswith("#") else None
        if match is not None:
            ids = [int(match.group(1))]
        else:
            words = text.casefold().split()
            jobs = await self._core.history(requester, limit=INLINE_RESULTS)
            ids = [j.id for j in jobs if all(w in j.spec.prompt.casefold() for w in words)]
        # Whose images, and which, may leave their group is the core's rule (SHARE_OUTSIDE).
        jobs = await self._community.shareable(requester, ids)
        return [(job, ref) for job in jobs if (ref := self._status.file_ref(job)) is not None]
