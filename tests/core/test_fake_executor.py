"""The one fake executor (bot.testing.executor): the knobs the benchmarks and
``turbobot worker --fake-latency-ms`` use, and that it satisfies the port."""

from __future__ import annotations

import asyncio
import itertools

from bot.domain import GenerationSpec
from bot.ports import Executor
from bot.testing.executor import FakeExecutor, tiny_jpeg

SPEC = GenerationSpec("a fox", None, seed=5, steps=4, width=1024, height=1024)


def test_it_is_an_executor() -> None:
    executor: Executor = FakeExecutor()  # mypy checks the Protocol; this checks it at run time
    assert executor.capacity == 1
    assert [s.name for s in executor.styles()] == ["watercolor", "ink"]


async def test_by_default_it_answers_with_the_seeds_jpeg_and_every_step() -> None:
    fake = FakeExecutor()
    steps: list[tuple[int, int]] = []
    made = await fake.generate(7, SPEC, lambda s, t: steps.append((s, t)))
    assert made.jpeg == tiny_jpeg(5)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert fake.calls == [(7, SPEC)]
    assert [job for job, _ in fake.handed] == [7]


async def test_sleeping_it_still_reports_each_step_and_returns_the_given_jpeg() -> None:
    fake = FakeExecutor(sleep_s=0.004, jpeg=b"\xff\xd8big")
    steps: list[tuple[int, int]] = []
    made = await fake.generate(1, SPEC, lambda s, t: steps.append((s, t)))
    assert made.jpeg == b"\xff\xd8big"
    assert made.timings.denoise_ms == 4.0
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_serial_runs_one_job_at_a_time_like_one_gpu() -> None:
    fake = FakeExecutor(capacity=2, sleep_s=0.004, serial=True)
    await asyncio.gather(*(fake.generate(j, SPEC, lambda s, t: None) for j in (1, 2, 3)))
    runs = sorted(fake.runs, key=lambda r: r[1])
    assert len(runs) == 3
    for (_, _, end), (_, start, _) in itertools.pairwise(runs):
        assert end <= start  # the next run starts after the last one ended: no overlap


async def test_without_serial_jobs_overlap() -> None:
    """The counterpart of the test above, so that one can fail: jobs do overlap unserialised."""
    fake = FakeExecutor(capacity=2, sleep_s=0.004)
    await asyncio.gather(*(fake.generate(j, SPEC, lambda s, t: None) for j in (1, 2)))
    (_, _start_a, end_a), (_, start_b, _end_b) = sorted(fake.runs, key=lambda r: r[1])
    assert start_b < end_a
