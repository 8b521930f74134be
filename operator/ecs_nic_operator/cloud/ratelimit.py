"""Client-side ceiling on calls to one cloud, shared by every attachment that uses it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Token bucket as virtual scheduling (GCRA).

    Each ``acquire`` reserves the next send slot synchronously, before its first await, so
    slots are handed out in call order (FIFO) without a lock and without waking every waiter
    on each release. Slot n (after the initial burst) is never earlier than n/qps after the
    bucket was last full, so the sustained rate cannot exceed ``qps`` whatever the
    concurrency. A cancelled waiter leaves its slot unused: that only ever makes the
    ceiling stricter.
    """

    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if qps > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1 when qps > 0, got {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._interval = 1.0 / qps if qps > 0 else 0.0
        # Theoretical arrival time: when the bucket would be full again if nobody else came.
        self._tat = float("-inf")

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps}, burst={self.burst})"

    def _reserve(self, now: float) -> float:
        tat = max(self._tat, now)
        start = max(now, tat - (self.burst - 1) * self._interval)
        self._tat = tat + self._interval
        return start

    async def acquire(self) -> float:
        """Wait for a slot; returns the seconds spent waiting."""
        if self._interval == 0.0:
            return 0.0
        began = self._clock()
        start = self._reserve(began)
        now = began
        # Loop because the event loop may wake a timer up to one clock tick early.
        while now < start:
            await asyncio.sleep(start - now)
            now = self._clock()
        return now - began
