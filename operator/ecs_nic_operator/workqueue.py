"""A delayed, de-duplicating work queue (in the spirit of client-go's workqueue) for reconcile keys.

One dispatcher and two heaps for all objects: at 10,000 attachments that is 10,000 heap entries, not
10,000 asyncio tasks or timers. A key is never processed twice at once; a key scheduled while it is
being processed runs again once the current run ends.

Two lanes: first looks at objects this process has not handled yet (a creation wave, a restart) wait in
the "new" lane, and any due key of the main lane (a poll of an attached port, a retry, a user's change, a
delete) goes first. In a wave of thousands that lets attached NICs become Ready while the rest still
queue, instead of every poll waiting behind every first look.

How many keys run at once follows the work downstream: ``wanted()`` (re-read at every dispatch and at least
every RESIZE_EVERY seconds) says how many the clouds' rate limits can keep busy at their observed latency,
``base`` more cover the parts of a reconcile that are not cloud calls (Kubernetes writes, per-server lock
waits), and ``workers`` caps it all, so memory stays bounded whatever a cloud's latency. A smaller size
never interrupts a running key; it only holds back the next dispatch. Keys dispatched beyond what the
rate limits can serve would only wait in the limiter's FIFO, where lanes no longer count.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

MAIN, NEW = 0, 1
# The size is re-read at least this often while every slot is taken: a cloud that slows down shows it in
# calls still out (cloud.ratelimit.Latency) before any of them, or any reconcile, ends.
RESIZE_EVERY = 0.25
BASE = 32


class WorkQueue(Generic[K]):
    def __init__(
        self,
        process: Callable[[K], Awaitable[None]],
        workers: int,
        wanted: Callable[[], int] | None = None,
        base: int = BASE,
    ) -> None:
        """workers: the most keys processed at once (the memory-safe cap). wanted: how many more than base the
        work downstream can use now; without it, always workers."""
        self._process = process
        self._workers = max(1, workers)
        self._wanted = wanted
        self._base = base
        self._due: dict[K, tuple[float, int]] = {}  # when, lane
        self._heaps: tuple[list[tuple[float, int, K]], list[tuple[float, int, K]]] = ([], [])
        self._seq = itertools.count()
        self._active: set[K] = set()
        self._again: dict[K, float] = {}
        self._wakeup = asyncio.Event()
        self._freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._due)

    @property
    def running(self) -> int:
        return len(self._active)

    def size(self) -> int:
        """How many keys may run at once right now."""
        if self._wanted is None:
            return self._workers
        return max(1, min(self._workers, self._base + max(0, self._wanted())))

    def schedule(self, key: K, delay: float = 0.0, front: bool = False, new: bool = False) -> None:
        """Run key after delay seconds; an earlier schedule for the same key wins. front: before every key
        already due (in the order such calls were made). new: a first look, behind due keys of the main lane."""
        when = 0.0 if front else time.monotonic() + max(0.0, delay)
        lane = NEW if new and not front else MAIN
        if key in self._active:
            self._again[key] = min(when, self._again.get(key, when))
            return
        current = self._due.get(key)
        if current is not None and (current[0], current[1]) <= (when, lane):
            return
        self._due[key] = (when, lane)
        heapq.heappush(self._heaps[lane], (when, next(self._seq), key))
        self._wakeup.set()

    def forget(self, key: K) -> None:
        self._due.pop(key, None)
        self._again.pop(key, None)

    def due_in(self, key: K) -> float | None:
        due = self._due.get(key)
        return None if due is None else due[0] - time.monotonic()

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="workqueue")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._runner] if self._runner else []), return_exceptions=True)

    def _pop_due(self, now: float) -> K | None:
        """The next due key, the main lane first; stale heap entries (rescheduled, forgotten) are dropped."""
        for lane, heap in enumerate(self._heaps):
            while heap and heap[0][0] <= now:
                when, _, key = heapq.heappop(heap)
                if self._due.get(key) != (when, lane):
                    continue
                del self._due[key]
                return key
        return None

    def _next_due(self) -> float | None:
        tops = [heap[0][0] for heap in self._heaps if heap]
        return min(tops) if tops else None

    async def _run(self) -> None:
        while True:
            # A free worker first, then the most urgent due key at that moment: a key picked before the
            # wait could be overtaken by a more urgent one scheduled meanwhile.
            while len(self._active) >= self.size():
                self._freed.clear()
                await _wait(self._freed, RESIZE_EVERY)
            key = self._pop_due(time.monotonic())
            while key is None:
                nxt = self._next_due()
                timeout = None if nxt is None else max(0.0, nxt - time.monotonic())
                self._wakeup.clear()
                await _wait(self._wakeup, timeout)
                key = self._pop_due(time.monotonic())
            self._active.add(key)
            task = asyncio.create_task(self._one(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _one(self, key: K) -> None:
        try:
            await self._process(key)
        finally:
            self._active.discard(key)
            self._freed.set()
            again = self._again.pop(key, None)
            if again is not None:
                self.schedule(key, again - time.monotonic())


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    """Until event is set or the seconds pass. Not asyncio.wait_for: on Python 3.11 it can swallow a
    cancellation that arrives as the event is set, and stop() then waits for the dispatcher forever."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
