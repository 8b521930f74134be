"""The work queue runs as many keys at once as the clouds' rate limits can keep busy at the latency they
show, within its cap; a smaller size holds back dispatches but never interrupts a running key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ecs_nic_operator.cloud.ratelimit import HEADROOM, TokenBucket
from ecs_nic_operator.workqueue import WorkQueue


class Held:
    """A process whose keys run until released, counting how many run at once."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.most = 0
        self.started: list[str] = []
        self.release = asyncio.Event()
        self.changed = asyncio.Event()

    async def __call__(self, key: str) -> None:
        self.running.add(key)
        self.started.append(key)
        self.most = max(self.most, len(self.running))
        self.changed.set()
        try:
            await self.release.wait()
        finally:
            self.running.discard(key)
            self.changed.set()

    async def until(self, probe: Callable[[], bool]) -> None:
        async with asyncio.timeout(5.0):
            while not probe():
                self.changed.clear()
                await self.changed.wait()


async def settle() -> None:
    """Let every ready task run (the dispatcher included) until nothing more happens without time passing."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_no_more_keys_run_than_the_size_says_and_a_larger_size_takes_effect_without_an_ending() -> None:
    wanted = [3]
    held = Held()
    queue: WorkQueue[str] = WorkQueue(held, workers=100, wanted=lambda: wanted[0], base=0)
    queue.start()
    for i in range(20):
        queue.schedule(f"k{i}")
    await held.until(lambda: len(held.running) == 3)
    await settle()
    assert len(held.running) == 3 and queue.running == 3
    # A cloud that slows down: the size grows while nothing has ended yet.
    wanted[0] = 7
    await held.until(lambda: len(held.running) == 7)
    await settle()
    assert held.most == 7
    await queue.stop()


async def test_a_smaller_size_holds_back_the_next_dispatches_only() -> None:
    wanted = [6]
    held = Held()
    queue: WorkQueue[str] = WorkQueue(held, workers=100, wanted=lambda: wanted[0], base=0)
    queue.start()
    for i in range(30):
        queue.schedule(f"k{i}")
    await held.until(lambda: len(held.running) == 6)
    wanted[0] = 2
    await settle()
    assert len(held.running) == 6  # running keys are never interrupted
    held.release.set()  # the six running ones end (those already woken), the next ones are held again
    held.release.clear()
    await held.until(lambda: len(held.started) >= 8 and len(held.running) == 2)
    await settle()
    assert len(held.running) == 2 and len(held.started) == 8
    await queue.stop()


async def test_after_a_smaller_size_every_key_still_runs_and_stop_returns() -> None:
    """stop() once hung here: asyncio.wait_for swallowed the dispatcher's cancellation (Python 3.11)."""
    wanted = [6]
    held = Held()
    queue: WorkQueue[str] = WorkQueue(held, workers=100, wanted=lambda: wanted[0], base=0)
    queue.start()
    for i in range(30):
        queue.schedule(f"k{i}")
    await held.until(lambda: len(held.running) == 6)
    wanted[0] = 2
    seen_after: list[int] = []
    original = held.__call__

    async def counting(key: str) -> None:
        seen_after.append(len(held.running) + 1)
        await original(key)

    queue._process = counting  # keys dispatched from now on report how many run beside them
    held.release.set()  # the six running ones end; the rest run two at a time
    await held.until(lambda: len(held.started) == 30)
    await queue.stop()
    assert seen_after and max(seen_after) <= 2


async def test_the_cap_holds_whatever_is_wanted_and_base_adds_to_it() -> None:
    held = Held()
    queue: WorkQueue[str] = WorkQueue(held, workers=5, wanted=lambda: 1000)
    assert queue.size() == 5
    queue.start()
    for i in range(12):
        queue.schedule(f"k{i}")
    await held.until(lambda: len(held.running) == 5)
    await settle()
    assert held.most == 5
    await queue.stop()
    assert WorkQueue(held, workers=500, wanted=lambda: 10, base=32).size() == 42
    assert WorkQueue(held, workers=500, wanted=lambda: -3, base=0).size() == 1  # never zero: no standstill
    assert WorkQueue(held, workers=7).size() == 7  # without a wanted size: the fixed pool of old


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("latency_s", [0.1, 0.5, 2.0, 5.0])
async def test_the_size_follows_the_latency_the_cloud_shows(latency_s: float) -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=47.5, burst=1, clock=clock)
    queue: WorkQueue[str] = WorkQueue(Held(), workers=1000, wanted=bucket.useful_in_flight, base=32)
    assert queue.size() == 33  # nothing observed yet
    # The cloud slows to latency_s: one call leaves every 1/qps and none is answered for latency_s. The size
    # keeps ahead of the calls out all along (it never caps the ramp), and settles near qps x L x headroom.
    out: list[int] = []
    while clock.now < 3 * latency_s:
        assert len(out) < queue.size()
        out.append(bucket.latency.sent())
        clock.now += 1 / 47.5
        if clock.now >= latency_s:
            bucket.latency.answered(out.pop(0))
    expected = 32 + 47.5 * latency_s * HEADROOM + 1
    assert queue.size() == pytest.approx(expected, rel=0.1)
    assert len(out) == pytest.approx(47.5 * latency_s, abs=2)  # Little's law, as the simulation made it
