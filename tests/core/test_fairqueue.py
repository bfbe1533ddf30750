"""Round-robin order and positions."""

from __future__ import annotations

import random
from dataclasses import replace

from bot.domain import GenerationSpec, Job, JobState
from bot.fairqueue import FairQueue
from tests.core.conftest import user

SPEC = GenerationSpec("p", None, 1, 4, 1024, 1024)


def job(job_id: int, who: str) -> Job:
    return Job(job_id, user(who), SPEC, JobState.QUEUED, created_at=0.0)


def drain(queue: FairQueue) -> list[int]:
    order = []
    while (j := queue.pop()) is not None:
        order.append(j.id)
    return order


def test_users_take_turns() -> None:
    q = FairQueue()
    for i, who in enumerate(["a", "a", "a", "b", "c", "b"], start=1):
        q.push(job(i, who))
    assert drain(q) == [1, 4, 5, 2, 6, 3]


def test_newcomer_waits_at_most_one_job_behind_a_heavy_user() -> None:
    q = FairQueue()
    for i in range(1, 51):
        q.push(job(i, "heavy"))
    q.pop()
    q.push(job(100, "new"))
    assert q.position(100) == 1
    assert drain(q)[:2] == [100, 2]


def test_a_user_served_last_waits_for_newcomers_of_the_round() -> None:
    q = FairQueue()
    q.push(job(1, "a"))
    q.push(job(2, "a"))
    q.push(job(3, "b"))
    first = q.pop()  # a served; a goes behind b
    q.push(job(4, "c"))  # c is new this round: before a, after b
    assert first is not None
    assert first.id == 1
    assert [q.position(i) for i in (3, 4, 2)] == [1, 2, 3]
    assert drain(q) == [3, 4, 2]


def test_positions_predict_the_pop_order() -> None:
    rng = random.Random(3)
    q = FairQueue()
    for i in range(1, 200):
        q.push(job(i, f"u{rng.randint(0, 12)}"))
        if rng.random() < 0.2:
            q.pop()
    predicted = sorted((q.position(j.id), j.id) for j in q.jobs())
    assert [pos for pos, _ in predicted] == list(range(1, len(q) + 1))
    assert drain(q) == [job_id for _, job_id in predicted]


def test_remove_and_push_front() -> None:
    q = FairQueue()
    for i, who in enumerate(["a", "b", "a"], start=1):
        q.push(job(i, who))
    removed = q.remove(3)
    assert removed is not None
    assert removed.id == 3
    assert 3 not in q
    assert q.remove(3) is None
    first = q.pop()
    assert first is not None
    q.push_front(first)
    assert q.count_for("console:a") == 1
    assert drain(q) == [1, 2]


def costly(job_id: int, who: str, n: int) -> Job:
    return Job(job_id, user(who), replace(SPEC, n=n), JobState.QUEUED, created_at=0.0)


def test_a_four_image_job_costs_its_user_four_turns() -> None:
    q = FairQueue()
    q.push(costly(1, "a", 4))
    q.push(job(2, "a"))
    for i in range(3, 8):
        q.push(job(i, "b"))
    # a's 4 images, then b gets the three turns a sits out plus its own, then a again.
    assert drain(q) == [1, 3, 4, 5, 6, 2, 7]


def test_a_lone_user_never_waits_for_their_own_charge() -> None:
    q = FairQueue()
    q.push(costly(1, "a", 4))
    q.push(job(2, "a"))
    assert drain(q) == [1, 2]


def test_positions_predict_the_pop_order_with_costly_jobs() -> None:
    rng = random.Random(5)
    q = FairQueue()
    for i in range(1, 80):
        q.push(costly(i, rng.choice("abcde"), rng.choice([1, 1, 2, 4])))
        if rng.random() < 0.3:
            q.pop()
    expected = {j.id: q.position(j.id) for j in q.jobs()}
    order = drain(q)
    assert {job_id: order.index(job_id) + 1 for job_id in order} == expected
