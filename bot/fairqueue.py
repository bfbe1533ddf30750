"""The in-memory order of queued jobs: round-robin across users, FIFO within a user.

Users take turns: the user at the head of the ring gives one job, then goes to the back if
they have more. A newcomer joins the back of the ring, so a user with 50 jobs queued delays
them by at most one job. The database is the durable copy; this is rebuilt from it at start.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from bot.domain import Job


class FairQueue:
    def __init__(self) -> None:
        self._ring: OrderedDict[str, deque[Job]] = OrderedDict()
        self._owner: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner

    def push(self, job: Job) -> None:
        """Queue a job behind the same user's earlier jobs."""
        key = job.requester.user_key
        self._ring.setdefault(key, deque()).append(job)
        self._owner[job.id] = key

    def push_front(self, job: Job) -> None:
        """Put back a job that was taken but could not run: it goes first again."""
        key = job.requester.user_key
        jobs = self._ring.setdefault(key, deque())
        jobs.appendleft(job)
        self._ring.move_to_end(key, last=False)
        self._owner[job.id] = key

    def pop(self) -> Job | None:
        """The next job in fair order, or None when nothing is queued."""
        if not self._ring:
            return None
        key, jobs = next(iter(self._ring.items()))
        job = jobs.popleft()
        del self._owner[job.id]
        if jobs:
            self._ring.move_to_end(key)
        else:
            del self._ring[key]
        return job

    def remove(self, job_id: int) -> Job | None:
        key = self._owner.pop(job_id, None)
        if key is None:
            return None
        jobs = self._ring[key]
        job = next(j for j in jobs if j.id == job_id)
        jobs.remove(job)
        if not jobs:
            del self._ring[key]
        return job

    def count_for(self, user_key: str) -> int:
        return len(self._ring.get(user_key, ()))

    def jobs_of(self, user_key: str) -> list[Job]:
        return list(self._ring.get(user_key, ()))

    def position(self, job_id: int) -> int:
        """1 = runs next. Counts the jobs the round-robin takes before this one."""
        key = self._owner[job_id]
        jobs = self._ring[key]
        k = next(i for i, j in enumerate(jobs) if j.id == job_id)
        ahead = k
        before = True
        for other, other_jobs in self._ring.items():
            if other == key:
                before = False
                continue
            # Users ahead in the ring give k+1 jobs before ours, users behind give k.
            ahead += min(len(other_jobs), k + 1 if before else k)
        return ahead + 1

    def jobs(self) -> list[Job]:
        """Every queued job, in no particular order."""
        return [job for jobs in self._ring.values() for job in jobs]
