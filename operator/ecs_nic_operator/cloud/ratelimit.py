"""Client-side ceiling on calls to one cloud, shared by every attachment that uses it, and how many calls
that ceiling keeps in flight at the latency the cloud actually shows."""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import time
from collections.abc import Awaitable, Callable

# Little's law gives the calls in flight that keep a ceiling of qps busy at latency L: qps x L. Grants and
# answers are not evenly spaced and reconciles do other things between calls, hence the headroom.
HEADROOM = 1.5
# Weight of one answered call in the smoothed latency: about the last 20 calls count.
SMOOTHING = 0.05
# What an unlimited cloud (qps <= 0) asks for: the caller's own cap applies.
UNLIMITED = 1 << 20
# Calls queued for a token beyond this many seconds of the ceiling mean more are running than the ceiling
# serves, whatever the latency estimate says (a starved event loop makes every call look slower than the
# cloud is): each one beyond it takes one off what the cloud asks for. Not all of it at once: dropping the
# ask to nothing stalled every server's chain of attaches until the queue had drained, then let them all
# in together, and the ceiling went unused in between (2 s latency: 25-35 calls/s against 47.5).
MAX_BACKLOG = 0.5
# A token, give or take the float error of a refill timed to the token (else a clock that advanced by just
# that sleep could leave 0.999... and a sleep too small to move it).
WHOLE = 1.0 - 1e-9
# Seconds of the rate a bucket keeps beyond its burst while calls queue without a pause (see TokenBucket).
CATCH_UP = 0.05


class Latency:
    """The cloud's observed latency: answered calls, smoothed, and the calls still out.

    Calls still out count because a cloud that slows down shows it there first: when every call takes 5 s,
    nothing is answered for 5 s, and an estimate from answers alone would stay at the old latency for that
    long. With calls sent at a steady rate, their ages are spread evenly over [0, L], so twice their median age
    estimates L before any answer arrives; the median, not the mean, so that a few calls stuck until their
    timeout do not count for more than their number.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._smoothed: float | None = None
        self._out: dict[int, float] = {}  # call -> when sent, oldest first (insertion order)
        self._ids = itertools.count()

    def sent(self) -> int:
        """A call leaves now; returns its handle for answered()."""
        call = next(self._ids)
        self._out[call] = self._clock()
        return call

    def answered(self, call: int) -> None:
        """The call's answer (or failure, a timeout included) came now."""
        sent = self._out.pop(call, None)
        if sent is None:
            return
        elapsed = max(0.0, self._clock() - sent)
        self._smoothed = elapsed if self._smoothed is None else self._smoothed + SMOOTHING * (elapsed - self._smoothed)

    @property
    def in_flight(self) -> int:
        return len(self._out)

    def estimate(self) -> float:
        """Seconds a call takes, as far as the answers and the calls still out show (0 before any call)."""
        smoothed = self._smoothed or 0.0
        if not self._out:
            return smoothed
        median_sent = next(itertools.islice(self._out.values(), len(self._out) // 2, None))
        return max(smoothed, 2.0 * (self._clock() - median_sent))


class TokenBucket:
    """Token bucket whose tokens are taken at the moment a call is released, under a FIFO lock.

    Reserving future send slots up front (virtual scheduling) is exact on an idle event loop, but when
    the loop lags (a busy operator with thousands of objects) every timer that fell due during the lag
    fires at once and the cloud sees a burst above the ceiling. Here the bucket is refilled from the
    clock at grant time, so however late a waiter wakes, no one-second window is granted more than
    ``qps + burst`` calls (checked against the grants of the last second, too). ``asyncio.Lock`` wakes
    waiters in arrival order, so grants stay FIFO, and a cancelled waiter simply leaves the queue.

    A waiter wakes later than asked whenever the loop is busy, and a bucket of one token (burst 1) cannot
    hold what accrued meanwhile: each late wake-up lost its lag, and at 47.5 calls/s a loop late by 10 ms a
    time granted about 32. So while calls queue without a pause, up to CATCH_UP seconds of the rate is kept
    beyond the burst; after an idle moment only the burst is.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1 when qps > 0, got {burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated: float | None = None
        self._busy = False  # calls were queued at the last grant: the lag since is the loop's, not idleness
        self._granted: collections.deque[float] = collections.deque()  # grant times of the last second
        self._per_second = math.floor(qps) + burst if qps > 0 else 0
        self._lock = asyncio.Lock()
        self.latency = Latency(clock=clock)
        self.waiting = 0  # calls queued for a token

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps}, burst={self.burst})"

    def useful_in_flight(self) -> int:
        """How many calls this ceiling keeps busy at the latency observed: qps x latency, with headroom, plus
        the burst. More in flight only queue here, ahead of calls that matter more (see WorkQueue)."""
        if self.qps <= 0:
            return UNLIMITED
        excess = max(0, self.waiting - math.floor(self.qps * MAX_BACKLOG))
        return max(0, math.ceil(self.qps * self.latency.estimate() * HEADROOM) + self.burst - excess)

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            cap = self.burst + (CATCH_UP * self.qps if self._busy else 0.0)
            self._tokens = min(cap, self._tokens + (now - self._updated) * self.qps)
        self._updated = now

    def _window_wait(self, now: float) -> float:
        """Seconds until the last second's grants leave room for one more (0: room now)."""
        granted = self._granted
        while granted and granted[0] <= now - 1.0:
            granted.popleft()
        if len(granted) < self._per_second:
            return 0.0
        return granted[0] + 1.0 - now

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds spent waiting."""
        if self.qps <= 0:
            return 0.0
        began = self._clock()
        waited = self._lock.locked()  # queued behind others: that is waiting too
        self.waiting += 1
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    self._refill(now)
                    if self._tokens >= WHOLE and (full := self._window_wait(now)) <= 0.0:
                        self._tokens -= 1.0
                        self._granted.append(now)
                        self._busy = self.waiting > 1
                        return now - began if waited else 0.0
                    waited = True
                    if self._tokens >= WHOLE:
                        await self._sleep(full)
                    else:
                        await self._sleep((1.0 - self._tokens) / self.qps)
        finally:
            self.waiting -= 1
