"""The unfinished jobs: every job from its queuing to its final state, at its latest version.

Admission puts a job on the board, dispatch and delivery update it, and whoever makes it final
takes it off; ``wait_until_idle`` callers (tests, the console, ``/forget``) wake up when a user
has nothing left on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from bot.domain import Job


class Board:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._jobs

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def put(self, job: Job) -> None:
        self._jobs[job.id] = job

    def has_active(self, user_key: str) -> bool:
        return any(j.requester.user_key == user_key for j in self._jobs.values())

    def finish(self, job: Job) -> None:
        """``job`` reached a final state: off the board; wake its user's waiters if idle now."""
        self._jobs.pop(job.id, None)
        key = job.requester.user_key
        if self.has_active(key):
            return
        still_waiting = []
        for user_key, future in self._waiters:
            if user_key == key and not future.done():
                future.set_result(None)
            elif not future.done():
                still_waiting.append((user_key, future))
        self._waiters = still_waiting

    async def wait_until_idle(self, user_key: str) -> None:
        if not self.has_active(user_key):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((user_key, future))
        await future
