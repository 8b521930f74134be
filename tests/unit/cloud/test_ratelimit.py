"""TokenBucket: the ceiling holds under concurrency, burst at start, FIFO order."""

from __future__ import annotations

import asyncio
import time

import pytest

from ecs_nic_operator.cloud.ratelimit import TokenBucket


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
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    start = time.monotonic()
    await bucket.acquire()
    # The cancelled slot is not reused: the next caller still waits for its own slot.
    assert time.monotonic() - start >= 0.05


def test_rejects_zero_burst() -> None:
    with pytest.raises(ValueError):
        TokenBucket(qps=5, burst=0)
