"""TokenBucket: the ceiling holds under concurrency, burst at start, FIFO order."""

from __future__ import annotations

import asyncio
import time

import pytest

from ecs_nic_operator.cloud.ratelimit import HEADROOM, UNLIMITED, Latency, TokenBucket


async def test_sequential_ceiling() -> None:
    bucket = TokenBucket(qps=50, burst=5)
    start = time.monotonic()
    for _ in range(30):
        await bucket.acquire()
    elapsed = time.monotonic() - start
    assert elapsed >= (30 - 5) / 50
    assert elapsed < (30 - 5) / 50 + 0.25  # and it does not over-throttle


async def test_concurrent_ceiling_and_send_times() -> None:
    bucket = TokenBucket(qps=50, burst=5)
    granted: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        granted.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(30)))
    granted.sort()
    assert granted[-1] - start >= (30 - 5) / 50
    # Sliding-window check: no window of length w ever holds more than burst + w*qps grants.
    for i, t in enumerate(granted):
        for j in range(i, len(granted)):
            window = granted[j] - t
            assert j - i + 1 <= 5 + window * 50 + 1e-9


async def test_burst_is_immediate() -> None:
    bucket = TokenBucket(qps=1, burst=10)
    waits = [await bucket.acquire() for _ in range(10)]
    assert waits == [0.0] * 10


async def test_fifo_under_concurrency() -> None:
    bucket = TokenBucket(qps=200, burst=1)
    order: list[int] = []

    async def one(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    tasks = [asyncio.create_task(one(i)) for i in range(25)]
    await asyncio.gather(*tasks)
    assert order == list(range(25))


async def test_unlimited() -> None:
    bucket = TokenBucket(qps=0, burst=0)
    start = time.monotonic()
    for _ in range(10_000):
        assert await bucket.acquire() == 0.0
    assert time.monotonic() - start < 1.0


async def test_refills_after_idle_but_not_beyond_burst() -> None:
    now = [100.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    for _ in range(3):
        assert await bucket.acquire() == 0.0
    now[0] += 10.0  # long idle: refilled to burst, no more
    for _ in range(3):
        assert await bucket.acquire() == 0.0
    with pytest.raises(TimeoutError):  # a fourth would wait: the clock stands still, so it never gets a token
        await asyncio.wait_for(bucket.acquire(), 0.05)


async def test_cancelled_waiter_does_not_raise_rate() -> None:
    bucket = TokenBucket(qps=20, burst=1)
    await bucket.acquire()  # an unlocked lock and a token: returns without yielding, so this is the grant time
    first = time.monotonic()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await bucket.acquire()
    # The cancelled slot is not reused: the next grant still comes a full 1/qps after the first (timed from the
    # first grant, not from the cancel, so a slow machine's lag in between cannot hide a token it would refill).
    assert time.monotonic() - first >= 0.05


def test_rejects_zero_burst() -> None:
    with pytest.raises(ValueError):
        TokenBucket(qps=5, burst=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_latency_is_smoothed_over_answered_calls() -> None:
    clock = FakeClock()
    latency = Latency(clock=clock)
    assert latency.estimate() == 0.0
    call = latency.sent()
    clock.now += 2.0
    latency.answered(call)
    assert latency.estimate() == pytest.approx(2.0)
    for _ in range(200):  # the cloud got faster: the estimate follows, not at once
        call = latency.sent()
        clock.now += 0.1
        latency.answered(call)
        if _ == 0:
            assert latency.estimate() > 1.8
    assert latency.estimate() == pytest.approx(0.1, abs=0.01)
    latency.answered(call)  # a second answer for the same call counts once
    assert latency.estimate() == pytest.approx(0.1, abs=0.01)


def test_a_slowdown_shows_in_calls_still_out_before_any_answer() -> None:
    clock = FakeClock()
    latency = Latency(clock=clock)
    for _ in range(20):  # answered at 0.1 s
        call = latency.sent()
        clock.now += 0.1
        latency.answered(call)
    out = []
    for _ in range(50):  # now the cloud takes 5 s; one call leaves every 0.05 s, none answered yet
        out.append(latency.sent())
        clock.now += 0.05
    # Ages spread over [0, 2.5]: twice the mean age is the time the oldest has been out.
    assert latency.in_flight == 50
    assert latency.estimate() == pytest.approx(2.5, abs=0.06)
    for call in out:
        latency.answered(call)
    assert latency.in_flight == 0
    assert 0.1 < latency.estimate() < 2.5  # answers move the smoothed value up, gradually


def test_a_few_stuck_calls_do_not_count_for_more_than_their_number() -> None:
    clock = FakeClock()
    latency = Latency(clock=clock)
    latency.sent()  # never answered
    clock.now += 10.0
    assert latency.estimate() == pytest.approx(20.0)  # alone, it is all the evidence there is
    latency.sent()  # a second one, also stuck
    for _ in range(200):  # steady traffic at 0.2 s, four more out at any time
        pending = [latency.sent() for _ in range(4)]
        clock.now += 0.1
        assert latency.estimate() == pytest.approx(0.2)
        clock.now += 0.1
        for call in pending:
            latency.answered(call)


def test_useful_in_flight_follows_littles_law() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=50, burst=1, clock=clock)
    assert bucket.useful_in_flight() == 1  # nothing observed yet: just the burst
    for latency_s in (0.1, 2.0, 5.0):
        for _ in range(400):
            call = bucket.latency.sent()
            clock.now += latency_s
            bucket.latency.answered(call)
        assert bucket.useful_in_flight() == pytest.approx(50 * latency_s * HEADROOM + 1, abs=1.0)
    assert TokenBucket(qps=0, burst=0).useful_in_flight() == UNLIMITED


async def test_each_call_queued_beyond_half_a_second_of_the_ceiling_takes_one_off_the_ask() -> None:
    clock = FakeClock()  # stands still: queued callers stay queued
    bucket = TokenBucket(qps=10, burst=1, clock=clock)
    call = bucket.latency.sent()
    clock.now += 2.0
    bucket.latency.answered(call)
    assert bucket.useful_in_flight() == 31  # Little's law: 10/s x 2 s x 1.5, plus the burst
    tasks = [asyncio.create_task(bucket.acquire()) for _ in range(8)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert bucket.waiting == 7  # the first took the one token at once
    assert bucket.useful_in_flight() == 29  # 7 queued, 2 beyond 10/s x 0.5 s: two fewer would keep it busy
    more = [asyncio.create_task(bucket.acquire()) for _ in range(40)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert bucket.useful_in_flight() == 0  # 42 beyond: asks for nothing more, never less than nothing
    tasks += more
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert bucket.waiting == 0  # cancelled callers leave the count
    assert bucket.useful_in_flight() == 31


class LaggingLoop:
    """A clock and a sleep for the bucket: every wake-up comes lag seconds later than asked, as on a busy loop."""

    def __init__(self, lag: float) -> None:
        self.now = 100.0
        self.lag = lag

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds + self.lag
        await asyncio.sleep(0)


@pytest.mark.parametrize("lag", [0.0, 0.005, 0.01, 0.03])
async def test_a_late_loop_loses_no_rate_and_no_second_gets_more_than_qps_plus_burst(lag: float) -> None:
    loop = LaggingLoop(lag)
    bucket = TokenBucket(qps=47.5, burst=1, clock=loop, sleep=loop.sleep)
    granted: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        granted.append(loop.now)

    await asyncio.gather(*(one() for _ in range(500)))
    rate = (len(granted) - 1) / (granted[-1] - granted[0])
    # Before: a bucket of one token lost each wake-up's lag (10 ms late: 32 calls/s of 47.5).
    assert rate >= 47.5 * 0.97
    for i, t in enumerate(granted):  # the documented ceiling: at most qps + burst in any one second
        assert sum(1 for u in granted[i:] if u < t + 1.0) <= 47 + 1


async def test_after_an_idle_moment_only_the_burst_is_at_hand() -> None:
    loop = LaggingLoop(0.03)
    bucket = TokenBucket(qps=10, burst=2, clock=loop, sleep=loop.sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(20)))  # a queue: catch-up credit builds
    loop.now += 60.0  # idle
    waits = [await bucket.acquire() for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0.0
