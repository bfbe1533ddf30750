"""Core benchmarks in one run: ``python -m benchmarks.bench_core [--out FILE]``.

A fake executor stands in for the GPU: one generation at a time (a lock) taking a fixed time,
with the capacity of the local executor (2, so the next job is staged while one finishes).
Everything else is real: SQLite on the local disk with WAL + synchronous=FULL, atomic image
writes with fsync, the dispatcher and delivery tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.report import machine, write_section
from bot.config import Settings
from bot.domain import (
    Delivered,
    DeriveKind,
    GenerateRequest,
    Job,
    Platform,
    Requester,
)
from bot.image_files import write_atomic
from bot.service import open_core
from bot.testing.executor import FakeExecutor

SATURATION_JOB_S = 0.05
NEWCOMER_JOB_S = 0.02
TARGET_P99_MS = 10.0  # 1 % of a 1-second GPU image: the core must not matter next to the GPU
JPEG = b"\xff\xd8" + bytes(200_000) + b"\xff\xd9"  # about the size of a real 1 MP JPEG


def gpu_stand_in(
    latency_s: float, capacity: int = 2, gate: asyncio.Event | None = None
) -> FakeExecutor:
    """Fixed-latency generation, one at a time, like one GPU; records when each one ran
    (``runs``) and when the core handed it over (``handed``)."""
    return FakeExecutor(
        capacity=capacity, gate=gate, sleep_s=latency_s, serial=True, jpeg=JPEG, style_list=[]
    )


@dataclass
class TimedNotifier:
    platform: Platform = Platform.CONSOLE
    delivered_at: dict[int, float] = field(default_factory=dict)

    async def progress(self, job: Job, step: int, total: int) -> None:
        return None

    async def deliver(self, job: Job, jpeg_path: str) -> Delivered:
        self.delivered_at[job.id] = time.perf_counter()
        return Delivered(f"m{job.id}", job.requester.channel_id)

    async def deliver_text(self, job: Job) -> Delivered:
        self.delivered_at[job.id] = time.perf_counter()
        return Delivered(f"t{job.id}", job.requester.channel_id)

    async def failed(self, job: Job, reason: str) -> None:
        raise AssertionError(f"job {job.id} failed: {reason}")


def settings(data_dir: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        TURBOBOT_DATA_DIR=data_dir,
        TURBOBOT_METRICS_PORT=0,
        TURBOBOT_RATE_PER_MINUTE=1e9,
        TURBOBOT_RATE_BURST=1_000_000,
        TURBOBOT_MAX_PENDING_PER_USER=1_000_000,
        TURBOBOT_MAX_PENDING_PER_SERVER=1_000_000,
        TURBOBOT_MAX_QUEUE=1_000_000,
    )


def who(n: int) -> Requester:
    return Requester(Platform.CONSOLE, f"user{n}", f"User {n}", f"chan{n}")


def req(user: Requester, prompt: str = "a benchmark prompt") -> GenerateRequest:
    return GenerateRequest(user, prompt, seed=1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_saturation(root: Path, latency_s: float) -> dict[str, Any]:
    """200 jobs from 50 users submitted at once: how busy is the GPU stand-in?"""
    gpu, note = gpu_stand_in(latency_s), TimedNotifier()
    async with open_core(settings(root / "sat"), gpu) as core:
        core.register(note)
        users = [who(i) for i in range(50)]
        await asyncio.gather(*(core.submit(req(users[i % 50])) for i in range(200)))
        for u in users:
            await core.wait_until_idle(u.user_key)
    busy = sum(end - start for _, start, end in gpu.runs)
    span = max(end for *_, end in gpu.runs) - min(start for _, start, _ in gpu.runs)
    return {"jobs": len(gpu.runs), "busy_ratio": busy / span, "span_s": span}


async def bench_mixed(root: Path, latency_s: float) -> dict[str, Any]:
    """200 jobs of mixed kinds from 50 users at once (issue 13): 1 and 4 images, vary,
    upscale, pick (no GPU work) of each user's earlier 4-image job. Busy ratio as above."""
    gpu, note = gpu_stand_in(latency_s), TimedNotifier()
    async with open_core(settings(root / "mixed"), gpu) as core:
        core.register(note)
        users = [who(i) for i in range(50)]
        parents = [(await core.submit(replace(req(u), n=4))).job.id for u in users]
        for u in users:
            await core.wait_until_idle(u.user_key)
        first = len(gpu.runs)

        def one(i: int) -> Any:
            u, parent = users[i % 50], parents[i % 50]
            match i % 5:
                case 0:
                    return core.submit(req(u))
                case 1:
                    return core.submit(replace(req(u), n=4))
                case 2:
                    return core.derive(u, parent, DeriveKind.VARY_SUBTLE, image=2)
                case 3:
                    return core.derive(u, parent, DeriveKind.UPSCALE_SUBTLE, image=1)
                case _:
                    return core.derive(u, parent, DeriveKind.PICK, image=3)

        await asyncio.gather(*(one(i) for i in range(200)))
        for u in users:
            await core.wait_until_idle(u.user_key)
    runs = gpu.runs[first:]
    busy = sum(end - start for _, start, end in runs)
    span = max(end for *_, end in runs) - min(start for _, start, _ in runs)
    return {"jobs": 200, "gpu_jobs": len(runs), "busy_ratio": busy / span, "span_s": span}


async def bench_added_latency(root: Path, latency_s: float, jobs: int) -> dict[str, Any]:
    """One job at a time on an idle queue: time spent outside generation, per job."""
    gpu, note = gpu_stand_in(latency_s), TimedNotifier()
    before, after, submit = [], [], []
    async with open_core(settings(root / "lat"), gpu) as core:
        core.register(note)
        user = who(0)
        for _ in range(jobs):
            t0 = time.perf_counter()
            ticket = await core.submit(req(user))
            t1 = time.perf_counter()
            await core.wait_until_idle(user.user_key)
            _, start, end = gpu.runs[-1]
            submit.append((t1 - t0) * 1e3)
            before.append((start - t1) * 1e3)
            after.append((note.delivered_at[ticket.job.id] - end) * 1e3)
    total = [b + a for b, a in zip(before, after, strict=True)]
    return {
        "submit_p50": pct(submit, 0.5),
        "submit_p99": pct(submit, 0.99),
        "before_p50": pct(before, 0.5),
        "after_p50": pct(after, 0.5),
        "added_p50": pct(total, 0.5),
        "added_p99": pct(total, 0.99),
    }


async def bench_enqueue(root: Path, jobs: int) -> dict[str, Any]:
    """Durable enqueue: many users submitting at once (group commit), and one at a time."""
    gpu = gpu_stand_in(0.0, capacity=1, gate=asyncio.Event())  # nothing finishes: all stay queued
    async with open_core(settings(root / "enq"), gpu, drain_timeout_s=1.0) as core:
        t0 = time.perf_counter()
        await asyncio.gather(*(core.submit(req(who(i % 1000))) for i in range(jobs)))
        concurrent = jobs / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(200):
            await core.submit(req(who(5000 + i)))
        sequential = 200 / (time.perf_counter() - t0)
        await core.stop_intake()
    return {"concurrent_per_s": concurrent, "sequential_per_s": sequential}


async def bench_memory(root: Path, jobs: int) -> dict[str, Any]:
    """Python heap growth while 10,000 jobs sit in the queue (traced, so run apart)."""
    gpu = gpu_stand_in(0.0, capacity=1, gate=asyncio.Event())
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    async with open_core(settings(root / "mem"), gpu, drain_timeout_s=1.0) as core:
        await asyncio.gather(*(core.submit(req(who(i % 1000))) for i in range(jobs)))
        gc.collect()
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
        tracemalloc.stop()
        await core.stop_intake()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mem_mb": grown / 2**20, "per_job_kb": grown / jobs / 1024, "rss_mb": rss_mb}


async def bench_newcomer(root: Path, latency_s: float) -> dict[str, Any]:
    """A heavy user queues 100 jobs; a newcomer then asks for one. How long does it wait?"""
    gpu, note = gpu_stand_in(latency_s), TimedNotifier()
    async with open_core(settings(root / "new"), gpu) as core:
        core.register(note)
        heavy, newcomer = who(1), who(2)
        for _ in range(100):
            await core.submit(req(heavy))
        await asyncio.sleep(latency_s * 2.5)  # the heavy user's jobs are flowing
        t0 = time.perf_counter()
        ticket = await core.submit(req(newcomer, "newcomer"))
        queued_at = time.perf_counter()
        await core.wait_until_idle(newcomer.user_key)
        waited = note.delivered_at[ticket.job.id] - t0
        mine = next(t for j, t in gpu.handed if j == ticket.job.id)
        # Fairness of the queue: jobs the core handed out after ours was queued but before it.
        overtook = sum(1 for j, t in gpu.handed if queued_at <= t < mine)
        # Jobs already handed to the executor (running or staged) when ours was queued.
        in_flight = sum(1 for j, t in gpu.handed if t < queued_at) - sum(
            1 for _, _, end in gpu.runs if end < queued_at
        )
        await core.stop_intake()
    return {
        "position": ticket.position,
        "overtook": overtook,
        "in_flight": in_flight,
        "waited_s": waited,
    }


def image_write_ms(root: Path) -> float:
    """The durable image write alone (write, fsync, rename, fsync folder): the floor of 'after'."""
    times = []
    for i in range(50):
        t0 = time.perf_counter()
        write_atomic(root / "probe" / f"{i}.jpg", JPEG)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fsync_ms(root: Path) -> float:
    path = root / "fsync.probe"
    times = []
    with path.open("wb") as f:
        for _ in range(50):
            f.write(b"x" * 4096)
            f.flush()
            t0 = time.perf_counter()
            os.fsync(f.fileno())
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


async def main() -> None:
    random.seed(0)
    root = Path(tempfile.mkdtemp(prefix="bench_core_", dir=Path.cwd() / "benchmarks"))
    try:
        results = {
            "sat": await bench_saturation(root, SATURATION_JOB_S),
            "mixed": await bench_mixed(root, SATURATION_JOB_S),
            "lat": await bench_added_latency(root, 0.005, 200),
            "enq": await bench_enqueue(root, 10_000) | await bench_memory(root, 10_000),
            "new": await bench_newcomer(root, NEWCOMER_JOB_S),
            "fsync_ms": fsync_ms(root),
            "image_write_ms": image_write_ms(root),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = report(results)
    print(text)
    write_section("core", "Core: queue, store, delivery (measured)", text)


def ok(good: bool) -> str:
    return "met" if good else "**missed**"


def report(r: dict[str, Any]) -> str:
    sat, lat, enq, new = r["sat"], r["lat"], r["enq"], r["new"]
    mix = r["mixed"]
    rows = [
        (
            f"executor busy ratio, 200 jobs from 50 users, {SATURATION_JOB_S * 1e3:.0f} ms each",
            f"**{sat['busy_ratio']:.4f}** ({sat['jobs']} jobs in {sat['span_s']:.2f} s)",
            f"≥ 0.99 {ok(sat['busy_ratio'] >= 0.99)}",
        ),
        (
            "busy ratio, 200 mixed jobs from 50 users (1 and 4 images, vary, upscale, pick), "
            f"{SATURATION_JOB_S * 1e3:.0f} ms per image",
            f"**{mix['busy_ratio']:.4f}** ({mix['gpu_jobs']} GPU jobs in {mix['span_s']:.2f} s)",
            f"≥ 0.99 {ok(mix['busy_ratio'] >= 0.99)}",
        ),
        (
            "added latency per job outside generation, p50",
            f"{lat['added_p50']:.2f} ms (before generation {lat['before_p50']:.2f} ms, "
            f"after {lat['after_p50']:.2f} ms)",
            "-",
        ),
        (
            "added latency per job outside generation, p99",
            f"**{lat['added_p99']:.2f} ms**",
            f"≤ 10 ms (1 % of a 1-second GPU image) {ok(lat['added_p99'] <= TARGET_P99_MS)}",
        ),
        (
            "submit() until the row is committed, p50 / p99",
            f"{lat['submit_p50']:.2f} / {lat['submit_p99']:.2f} ms",
            "-",
        ),
        (
            "durable enqueue, 10,000 concurrent submits from 1,000 users (group commit)",
            f"**{enq['concurrent_per_s']:,.0f} jobs/s**",
            f"≥ 2,000 {ok(enq['concurrent_per_s'] >= 2000)}",
        ),
        (
            "durable enqueue, one submit at a time",
            f"{enq['sequential_per_s']:,.0f} jobs/s (one commit each)",
            "-",
        ),
        (
            "memory for 10,000 queued jobs (Python heap growth)",
            f"**{enq['mem_mb']:.1f} MiB** ({enq['per_job_kb']:.2f} KiB/job); "
            f"process peak RSS {enq['rss_mb']:.0f} MiB",
            "-",
        ),
        (
            "newcomer behind a heavy user with 100 queued",
            f"position {new['position']}; {new['overtook']} queued job(s) went before it, "
            f"behind {new['in_flight']} already on the executor; waited "
            f"{new['waited_s'] * 1e3:.0f} ms (jobs of {NEWCOMER_JOB_S * 1e3:.0f} ms)",
            f"≤ 1 job {ok(new['overtook'] <= 1)}",
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    missed = lat["added_p99"] - TARGET_P99_MS
    verdict = "" if missed <= 0 else f"The p99 target is missed by {missed:.2f} ms in this run.\n"
    return f"""`python -m benchmarks.bench_core`: one run, {machine()}.
Fake GPU: fixed latency, one generation at a time, executor capacity 2 (like the local
executor). Everything else is real: SQLite (WAL, synchronous=FULL) and images (fsync of file
and folder, then rename) on the local disk, where one fsync takes
{r["fsync_ms"]:.2f} ms and the durable write of one 200 KB image {r["image_write_ms"]:.2f} ms
(medians of 50).

| measure | result | target |
|---|---|---|
{table}

"Added latency" is, on an idle queue, (generation start - submit returned) + (deliver called -
generation end). The target is 1 % of a 1-second GPU image at p99 (issue 16): the core does
its steps one after the other, the simple way: commit `running`, generate, write the image
(write, fsync, rename, fsync folder), commit `posting`, send. On a busy queue none of this
costs the GPU anything: the next job is already generating (busy ratio).
{verdict}What remains after generation is three device flushes (image file, its folder, the WAL
commit of `posting`), one after the other, and a thread hop for the file write. The earlier
tricks that overlapped them (a temporary file created during generation, the write and the
commit side by side) bought tenths of a millisecond and are gone: the order is now plain, and
at-most-once posting and durability are as before.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    asyncio.run(main())
