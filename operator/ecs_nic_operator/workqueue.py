"""A delayed, de-duplicating work queue (in the spirit of client-go's workqueue) for reconcile keys.

One heap and one dispatcher for all objects: at 10,000 attachments that is 10,000 heap entries, not
10,000 asyncio tasks or timers. A key is never processed twice at once; a key scheduled while it is
being processed runs again once the current run ends.
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


class WorkQueue(Generic[K]):
    def __init__(self, process: Callable[[K], Awaitable[None]], workers: int) -> None:
        self._process = process
        self._workers = workers
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._active: set[K] = set()
        self._again: dict[K, float] = {}
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: K, delay: float = 0.0, front: bool = False) -> None:
        """Run key after delay seconds; an earlier schedule for the same key wins. front: before every key
        already due (in the order such calls were made)."""
        when = 0.0 if front else time.monotonic() + max(0.0, delay)
        if key in self._active:
            self._again[key] = min(when, self._again.get(key, when))
            return
        current = self._due.get(key)
        if current is not None and current <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        self._wakeup.set()

    def forget(self, key: K) -> None:
        self._due.pop(key, None)
        self._again.pop(key, None)

    def due_in(self, key: K) -> float | None:
        when = self._due.get(key)
        return None if when is None else when - time.monotonic()

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="workqueue")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._runner] if self._runner else []), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                when, _, key = heapq.heappop(self._heap)
                if self._due.get(key) != when:
                    continue  # superseded by an earlier schedule, or forgotten
                del self._due[key]
                # Taken before waiting for a worker: a schedule() meanwhile must queue a rerun (_again), not
                # a second heap entry that this loop would start alongside the first.
                self._active.add(key)
                await self._slots.acquire()
                task = asyncio.create_task(self._one(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                now = time.monotonic()
            timeout = self._heap[0][0] - now if self._heap else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _one(self, key: K) -> None:
        try:
            await self._process(key)
        finally:
            self._active.discard(key)
            self._slots.release()
            again = self._again.pop(key, None)
            if again is not None:
                self.schedule(key, again - time.monotonic())
