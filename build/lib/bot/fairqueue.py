"""The in-memory order of queued jobs: round-robin across users, FIFO within a user.

Users take turns: the user at the head of the ring gives one job, then goes to the back if
they have more. A newcomer joins the back of the ring, but ahead of the user served last (who
went to the back just before), so a user with 50 jobs queued delays them by at most one job.
The database is the durable copy; this is rebuilt from it at start.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

from bot.domain import Job


class FairQueue:
    def __init__(self) -> None:
        self._ring: OrderedDict[str, deque[Job]] = OrderedDict()
        self._owner: dict[int, str] = {}
        self._last_served: str | None = None
        # _at_least[n] = how many users have n or more jobs queued; makes position() cheap.
        self._at_least: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._owner

    def push(self, job: Job) -> None:
        """Queue a job behind the same user's earlier jobs."""
        key = job.requester.user_key
        if key not in self._ring:
            behind = self._last_served if self._last_served in self._ring else None
            last = next(reversed(self._ring)) if self._ring else None
            self._ring[key] = deque()
            if behind is not None and behind == last:
                # The user served last went to the back a moment ago: the newcomer goes first.
                self._ring.move_to_end(behind)
        self._ring[key].append(job)
        self._at_least[len(self._ring[key])] += 1
        self._owner[job.id] = key

    def push_front(self, job: Job) -> None:
        """Put back a job that was taken but could not run: it goes first again."""
        key = job.requester.user_key
        jobs = self._ring.setdefault(key, deque())
        jobs.appendleft(job)
        self._at_least[len(jobs)] += 1
        self._ring.move_to_end(key, last=False)
        self._owner[job.id] = key

    def pop(self) -> Job | None:
        """The next job in fair order, or None when nothing is queued."""
        if not self._ring:
            return None
        key, jobs = next(iter(self._ring.items()))
        self._at_least[len(jobs)] -= 1
        job = jobs.popleft()
        del self._owner[job.id]
        self._last_served = key
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
        self._at_least[len(jobs)] -= 1
        jobs.remove(job)
        if not jobs:
            del self._ring[key]
        return job

    def count_for(self, user_key: str) -> int:
        return len(self._ring.get(user_key, ()))

    def jobs_of(self, user_key: str) -> list[Job]:
        return list(self._ring.get(user_key, ()))

    def position(self, job_id: int) -> int:
        """1 = runs next. Counts the jobs the round-robin takes before this one.

        With our job k-th (0-based) in its user's line, users ahead of us in the ring give
        min(len, k + 1) jobs first and users behind give min(len, k). The sums come from
        ``_at_least``; only the users behind us in the ring are walked (few, for new jobs).
        """
        key = self._owner[job_id]
        jobs = self._ring[key]
        k = (
            len(jobs) - 1
            if jobs[-1].id == job_id
            else next(i for i, j in enumerate(jobs) if j.id == job_id)
        )
        # Every other user gives min(len, k); those ahead of us one more when len > k.
        others_up_to_k = sum(self._at_least[n] for n in range(1, k + 1)) - k
        others_longer = self._at_least[k + 1] - 1
        behind_longer = 0
        for other in reversed(self._ring):
            if other == key:
                break
            behind_longer += len(self._ring[other]) > k
        return k + others_up_to_k + others_longer - behind_longer + 1

    def jobs(self) -> list[Job]:
        """Every queued job, in no particular order."""
        return [job for jobs in self._ring.values() for job in jobs]
