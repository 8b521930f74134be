"""Connections to one cloud split over several small httpcore pools.

httpcore's pool does work proportional to (connections x connections) every time a request enters or a response
closes: for each idle connection it counts all of them, and it asks every idle socket whether the server closed
it (a system call each). At one connection per call in flight, a ceiling of 50 calls/s at 2-5 s of latency keeps
100-250 connections open, and profiling the benchmark's operator at L = 2 s found 20-30 % of its CPU there. Small
pools keep that cost per request proportional to a pool's size, not the whole cloud's.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import httpx

# Connections per pool: big enough that a pool's own work per request stays small, enough pools for the cap.
POOL_SIZE = 32


def pool_count(max_connections: int) -> int:
    return max(1, math.ceil(max_connections / POOL_SIZE))


class PooledTransport(httpx.AsyncBaseTransport):
    """Sends each request through the pool with the fewest requests of ours in it (ties: the first), so requests
    and connections spread evenly and a pool's idle connections get reused before another opens new ones."""

    def __init__(self, make: Callable[[int], httpx.AsyncBaseTransport], max_connections: int) -> None:
        """make(n): one pool of at most n connections."""
        count = pool_count(max_connections)
        size = math.ceil(max_connections / count)
        self._pools = [make(size) for _ in range(count)]
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        # The connection stays taken until the body is read and the response closed.
        response.stream = _Released(response.stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self._busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Released(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if isinstance(self._stream, httpx.AsyncByteStream):
                await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:  # once, however often the response is closed
                release()
