"""Prometheus metrics and the small HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``.

Each :class:`Metrics` owns its registry (no process-wide singletons), so tests and several
cores in one process never collide.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

# Job latency from submit to posted: a 4-step image is seconds; a long queue is minutes.
_LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge(
            "turbobot_queue_depth", "Jobs waiting in the queue", registry=self.registry
        )
        self.in_flight = Gauge(
            "turbobot_jobs_in_flight", "Jobs handed to the executor", registry=self.registry
        )
        self.job_latency = Histogram(
            "turbobot_job_latency_seconds",
            "Seconds from submit to posted",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.generation_seconds = Histogram(
            "turbobot_generation_seconds",
            "Seconds the executor spent on one job",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.gpu_busy = Counter(
            "turbobot_gpu_busy_seconds",
            "Seconds during which at least one job was on the executor",
            registry=self.registry,
        )
        self.jobs = Counter(
            "turbobot_jobs", "Jobs by final state", ["state"], registry=self.registry
        )
        self.failures = Counter(
            "turbobot_failures", "Failures by kind", ["kind"], registry=self.registry
        )

        self.workers = Gauge(
            "turbobot_workers", "GPU workers by state", ["state"], registry=self.registry
        )
        self.worker_jobs = Gauge(
            "turbobot_worker_jobs_done",
            "Jobs a worker has finished (rate() of it is the worker's throughput)",
            ["worker", "gpu"],
            registry=self.registry,
        )
        self.worker_busy = Gauge(
            "turbobot_worker_busy",
            "1 while the worker runs a job",
            ["worker"],
            registry=self.registry,
        )

    def observe_pool(self, pool: dict[str, Any]) -> None:
        """Copy a worker pool snapshot (``PoolStats.as_dict()``) into the gauges."""
        self.workers.clear()
        self.worker_jobs.clear()
        self.worker_busy.clear()
        for worker in pool.get("workers", []):
            self.workers.labels(state=worker["state"]).inc()
            self.worker_jobs.labels(worker=worker["id"], gpu=worker["gpu"]).set(worker["jobs_done"])
            self.worker_busy.labels(worker=worker["id"]).set(1 if worker["busy"] else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@contextlib.asynccontextmanager
async def serve_metrics(
    metrics: Metrics,
    host: str,
    port: int,
    healthy: Callable[[], bool] = lambda: True,
    *,
    details: Callable[[], dict[str, Any]] | None = None,
    ready: Callable[[], bool] | None = None,
    pool: Callable[[], dict[str, Any] | None] | None = None,
) -> AsyncIterator[int | None]:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics``; yields the bound port (None when
    ``port`` is 0).

    ``details`` is shown as JSON on ``/healthz``. ``ready`` answers ``/readyz`` (start-up done;
    ``healthy`` when not given). ``pool`` (the worker pool's state, when there is one; else
    ``details``) is exported as per-worker gauges on ``/metrics``.
    """
    workers = pool or details
    is_ready = ready or healthy
    if port == 0:
        yield None
        return

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        status = 200 if ok else 503
        if details is None:
            return web.Response(text="ok\n" if ok else "unhealthy\n", status=status)
        return web.json_response({"ok": ok, **details()}, status=status)

    async def readyz(_: web.Request) -> web.Response:
        ok = is_ready()
        return web.Response(text="ready\n" if ok else "starting\n", status=200 if ok else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        snapshot = workers() if workers is not None else None
        if snapshot is not None:
            metrics.observe_pool(snapshot)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = _bound_port(runner, port)
    log.info("metrics on http://%s:%s/metrics", host, bound)
    try:
        yield bound
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default
