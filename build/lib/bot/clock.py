"""The real clock (tests use a fake one that satisfies :class:`bot.ports.Clock`)."""

from __future__ import annotations

import time


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
