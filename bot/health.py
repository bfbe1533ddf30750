"""What ``/healthz`` and ``/readyz`` report, and the systemd readiness notification.

The composition root fills a :class:`Status` in as the parts start: the HTTP server is up before
the model loads, so ``/readyz`` answers 503 ("starting") during a load of several minutes and
200 once every platform is connected. ``/healthz`` is 200 only while the engine runs and every
configured platform is connected; its JSON says which part is not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from bot.metrics import Metrics
from bot.ports import ChatAdapter


class Status:
    """The process's state for the health endpoints (read-only views of the real parts)."""

    def __init__(self, metrics: Metrics) -> None:
        self.stage = "starting"  # starting → loading the model → connecting → running → stopping
        self._metrics = metrics
        self._engine: Callable[[], bool] | None = None
        self._workers: Callable[[], dict[str, Any]] | None = None
        self._adapters: list[ChatAdapter] = []

    def attach_engine(
        self, healthy: Callable[[], bool], workers: Callable[[], dict[str, Any]] | None
    ) -> None:
        self._engine = healthy
        self._workers = workers

    def attach_platforms(self, adapters: list[ChatAdapter]) -> None:
        self._adapters = list(adapters)

    @property
    def ready(self) -> bool:
        return self.stage == "running"

    def platforms(self) -> dict[str, bool]:
        return {str(a.platform): a.connected for a in self._adapters}

    def engine_ok(self) -> bool:
        return self._engine is not None and self._engine()

    def healthy(self) -> bool:
        return self.ready and self.engine_ok() and all(self.platforms().values())

    def details(self) -> dict[str, Any]:
        registry = self._metrics.registry
        queue = registry.get_sample_value("turbobot_queue_depth") or 0.0
        in_flight = registry.get_sample_value("turbobot_jobs_in_flight") or 0.0
        workers = self._workers() if self._workers else {"embedded": 1, "busy": int(in_flight)}
        return {
            "stage": self.stage,
            "engine": self.engine_ok(),
            "platforms": self.platforms(),
            "queue_depth": int(queue),
            "workers": workers,
        }

    def pool(self) -> dict[str, Any] | None:
        """The worker pool's snapshot for the per-worker gauges (None: embedded executor)."""
        return self._workers() if self._workers else None


def notify_systemd(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1`` …) to systemd for ``Type=notify`` units.

    The sd_notify protocol is one datagram to the socket named by ``NOTIFY_SOCKET`` (a leading
    ``@`` is the abstract namespace). Without that variable this does nothing (returns False).
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
