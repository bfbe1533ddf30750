"""Recovery: after a restart or a crash, every unfinished job goes back on its path.

* queued → queued again;
* running → queued again while attempts remain, else failed and the user told;
* generated → delivered (or made again when its file did not survive);
* posting → never re-sent (the send may or may not have reached the platform): failed, and
  the user pointed to /history. At-most-once wins over delivery.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from bot import texts
from bot.board import Board
from bot.delivery import Delivery
from bot.dispatch import Dispatcher
from bot.domain import Job, JobState
from bot.image_files import ImageFiles
from bot.intake import Admission
from bot.store import Store

log = logging.getLogger(__name__)

_UNFINISHED = (JobState.QUEUED, JobState.RUNNING, JobState.GENERATED, JobState.POSTING)


class Recovery:
    def __init__(
        self,
        store: Store,
        board: Board,
        *,
        admission: Admission,
        dispatcher: Dispatcher,
        delivery: Delivery,
        files: ImageFiles,
        max_attempts: int,
    ) -> None:
        self._store = store
        self._board = board
        self._admission = admission
        self._dispatcher = dispatcher
        self._delivery = delivery
        self._files = files
        self._max_attempts = max_attempts

    async def recover(self) -> None:
        unfinished = await self._store.jobs_in_states(_UNFINISHED)
        for job in unfinished:
            await self._recover_one(job)
        if unfinished:
            log.info("recovered %d unfinished job(s)", len(unfinished))
        self._dispatcher.queue_changed()

    async def _recover_one(self, job: Job) -> None:
        if job.state is JobState.QUEUED:
            self._requeue(job)
        elif job.state is JobState.RUNNING and job.attempts < self._max_attempts:
            await self._store.update_job(job.id, state=JobState.QUEUED)
            self._requeue(replace(job, state=JobState.QUEUED))
        elif job.state is JobState.RUNNING:
            self._board.put(job)
            await self._delivery.fail(job, texts.stopped_too_often(job.attempts), kind="crash")
        elif job.state is JobState.GENERATED and _lost(job, self._files):
            # Recorded while its file was being written, and the file did not survive: make it
            # again (nothing was posted, so this cannot post twice).
            await self._store.update_job(job.id, state=JobState.QUEUED, image_path=None)
            self._requeue(replace(job, state=JobState.QUEUED, image_path=None))
        elif job.state is JobState.GENERATED:
            self._board.put(job)
            self._delivery.schedule(job)
        else:  # POSTING: at-most-once wins over delivery
            self._board.put(job)
            await self._delivery.fail(job, texts.maybe_posted(job.id), kind="delivery")

    def _requeue(self, job: Job) -> None:
        self._admission.hold(job)
        self._dispatcher.push(job)


def _lost(job: Job, files: ImageFiles) -> bool:
    """A generated job whose result is gone: an image file that did not survive. A describe's
    result is its recorded text, never lost this way."""
    return job.spec.kind.makes_image and files.find(job.image_path) is None
