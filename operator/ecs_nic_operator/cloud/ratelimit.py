"""Client-side ceiling on calls to one cloud, shared by every attachment that uses it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Token bucket whose tokens are taken at the moment a call is released, under a FIFO lock.

    Reserving future send slots up front (virtual scheduling) is exact on an idle event loop, but when
    the loop lags (a busy operator with thousands of objects) every timer that fell due during the lag
    fires at once and the cloud sees a burst above the ceiling. Here the bucket is refilled from the
    clock at grant time, so however late a waiter wakes, no one-second window is granted more than
    ``qps + burst`` calls. ``asyncio.Lock`` wakes waiters in arrival order, so grants stay FIFO, and a
    cancelled waiter simply leaves the queue.
    """

    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if qps > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1 when qps > 0, got {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated: float | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps}, burst={self.burst})"

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.qps)
        self._updated = now

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds spent waiting."""
        if self.qps <= 0:
            return 0.0
        began = self._clock()
        waited = self._lock.locked()  # queued behind others: that is waiting too
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return now - began if waited else 0.0
                waited = True
                await asyncio.sleep((1.0 - self._tokens) / self.qps)
