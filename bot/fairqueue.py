"""The in-memory order of queued jobs: round-robin across users, FIFO within a user.

Users take turns: the user at the head of the ring gives one job, then goes to the back if
they have more. A newcomer joins the back of the ring, but ahead of the user served last (who
went to the back just before), so a user with 50 jobs queued delays them by at most one job.
The database is the durable copy; this is rebuilt from it at start.

A job is charged by its cost (``GenerationSpec.cost``: its images, an upscale its pixel
ratio): after a job of cost c, its user sits out their next c - 1 turns while others wait
(a deficit round-robin), so four images cost the same turns as four one-image jobs. Nobody
waits for a user who sits out when nobody else is queued.
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
        # Turns a user in the ring still sits out (the rest of a costly job's charge), and how
        # many queued jobs cost more than one: with neither, position() has its fast formula.
        self._debt: dict[str, int] = {}
        self._heavy = 0

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
        self._heavy += job.spec.cost > 1

    def push_front(self, job: Job) -> None:
        """Put back a job that was taken but could not run: it goes first again."""
        key = job.requester.user_key
        jobs = self._ring.setdefault(key, deque())
        jobs.appendleft(job)
        self._at_least[len(jobs)] += 1
        self._ring.move_to_end(key, last=False)
        self._owner[job.id] = key
        self._heavy += job.spec.cost > 1
        self._debt.pop(key, None)  # it was charged when taken: not twice

    def pop(self) -> Job | None:
        """The next job in fair order, or None when nothing is queued."""
        if not self._ring:
            return None
        key = self._next_user()
        jobs = self._ring[key]
        self._at_least[len(jobs)] -= 1
        job = jobs.popleft()
        del self._owner[job.id]
        self._heavy -= job.spec.cost > 1
        self._last_served = key
        if jobs:
            self._ring.move_to_end(key)
            if job.spec.cost > 1:
                self._debt[key] = job.spec.cost - 1
        else:
            del self._ring[key]
        return job

    def _next_user(self) -> str:
        """The head of the ring, after the users who sit out a turn went to the back."""
        while True:
            key = next(iter(self._ring))
            debt = self._debt.get(key, 0)
            if debt == 0 or len(self._ring) == 1:
                self._debt.pop(key, None)
                return key
            if debt == 1:
                del self._debt[key]
            else:
                self._debt[key] = debt - 1
            self._ring.move_to_end(key)

    def remove(self, job_id: int) -> Job | None:
        key = self._owner.pop(job_id, None)
        if key is None:
            return None
        jobs = self._ring[key]
        job = next(j for j in jobs if j.id == job_id)
        self._at_least[len(jobs)] -= 1
        jobs.remove(job)
        self._heavy -= job.spec.cost > 1
        if not jobs:
            del self._ring[key]
            self._debt.pop(key, None)
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
        if self._heavy or self._debt:
            return self._simulated_position(job_id)
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

    def _simulated_position(self, job_id: int) -> int:
        """The position by running the round-robin on a copy (costly jobs queued: O(n))."""
        copy = FairQueue()
        copy._ring = OrderedDict((k, deque(v)) for k, v in self._ring.items())
        copy._owner = dict(self._owner)
        copy._debt = dict(self._debt)
        copy._heavy = self._heavy
        copy._at_least = Counter(self._at_least)
        position = 1
        while (job := copy.pop()) is not None and job.id != job_id:
            position += 1
        return position

    def jobs(self) -> list[Job]:
        """Every queued job, in no particular order."""
        return [job for jobs in self._ring.values() for job in jobs]
