"""Status on Discord: the ephemeral reply that shows a job's progress, and the result post.

An interaction token lives 15 minutes, so a reply is edited only while its token is good;
the finished image always goes out as an ordinary channel message (:func:`post_result`),
which needs no token: it arrives after a long queue and after a restart.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord

from adapters.discord import format as fmt
from adapters.discord.texts import say
from adapters.discord.views import result_view
from bot.domain import Job, Language
from bot.i18n import Message
from bot.ports import Clock

PROGRESS_EVERY_S = 1.0  # no request storms: at most one progress edit per second per job
TOKEN_LIFETIME_S = 14 * 60.0  # interaction tokens die at 15 min; stop editing a little before
FINISHED_MEMORY = 512  # results remembered for a /imagine whose reply was not yet sent


@dataclass
class Tracked:
    """An interaction whose ephemeral reply shows one job's progress."""

    interaction: discord.Interaction[Any]
    opened_at: float
    last_edit: float = float("-inf")
    lang: Language = Language.EN  # the language of this reply (the core's rule)
    pending: asyncio.Future[Any] | None = None  # the edit in flight, if any


class StatusBoard:
    """Which interaction shows which job, and the final words of jobs not yet shown."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tracked: dict[int, Tracked] = {}
        # The final word of jobs that finished before their /imagine said "queued" (fast GPUs),
        # not yet rendered: the reply's language is known only once it is written.
        self._finished: OrderedDict[int, Message] = OrderedDict()

    def track(self, job_id: int, interaction: discord.Interaction[Any], lang: Language) -> Tracked:
        tracked = Tracked(interaction, opened_at=self._clock.monotonic(), lang=lang)
        self._tracked[job_id] = tracked
        return tracked

    def untrack(self, job_id: int) -> Tracked | None:
        return self._tracked.pop(job_id, None)

    def take_finished(self, job_id: int) -> Message | None:
        """The final text of a job that finished before its reply said "queued"."""
        return self._finished.pop(job_id, None)

    def live(self, job_id: int) -> Tracked | None:
        """The interaction showing this job, while its token is still good."""
        t = self._tracked.get(job_id)
        if t is None:
            return None
        if self._clock.monotonic() - t.opened_at > TOKEN_LIFETIME_S:
            del self._tracked[job_id]
            return None
        return t

    def due_for_progress(self, job_id: int) -> Tracked | None:
        """The interaction to edit for a progress step, or None when throttled."""
        t = self.live(job_id)
        now = self._clock.monotonic()
        busy = t is not None and t.pending is not None and not t.pending.done()
        if t is None or busy or now - t.last_edit < PROGRESS_EVERY_S:
            return None
        t.last_edit = now
        return t

    def remember_finished(self, job_id: int, text: Message) -> None:
        self._finished[job_id] = text
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)


async def post_result(
    channel: discord.abc.Messageable,
    job: Job,
    path: Path,
    limit: int,
    *,
    credit: str | None = None,
    lang: Language | str = Language.EN,
) -> discord.Message:
    """An ordinary channel message with the image, caption, mention and buttons.

    ``credit`` ("remix of #N by NAME") goes on the settings line of the caption.

    It needs no interaction token, so it works after a 15-minute queue and after a restart.
    """
    size = (await asyncio.to_thread(path.stat)).st_size
    # A job of several images is posted as its grid, with U1..Un and V1..Vn under it.
    view = result_view(job.id, lang, images=job.spec.n)
    mention = discord.AllowedMentions(users=[discord.Object(int(job.requester.user_id))])
    if size > limit:
        mib, cap = fmt.too_big(size, limit)
        text = say(
            lang,
            "too_big",
            mention=f"<@{job.requester.user_id}>",
            job=job.id,
            size=mib,
            limit=cap,
        )
        return await channel.send(fmt.fit_text(text), allowed_mentions=mention, view=view)
    # A flagged image (the safety check) goes behind a spoiler: discord.py names it SPOILER_...
    file = discord.File(path, filename=f"turbobot-{job.id}.jpg", spoiler=job.spoiler)
    return await channel.send(
        fmt.caption(job, credit, lang), file=file, view=view, allowed_mentions=mention
    )
