"""Connections split over small pools: each request goes to the least busy pool, and a pool is busy until the
response is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from ecs_nic_operator.cloud.pools import POOL_SIZE, PooledTransport, pool_count


class Body(httpx.AsyncByteStream):
    """A body read from the network, as httpcore's are (a Response built from bytes is read at once)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"


def test_pool_count_covers_the_cap() -> None:
    assert pool_count(1) == 1
    assert pool_count(POOL_SIZE) == 1
    assert pool_count(POOL_SIZE + 1) == 2
    assert pool_count(512) == 512 // POOL_SIZE


async def test_requests_spread_over_pools_until_their_responses_close() -> None:
    gate = asyncio.Event()
    used: list[int] = []
    sizes: list[int] = []

    def make(size: int) -> httpx.AsyncBaseTransport:
        index = len(sizes)
        sizes.append(size)

        async def answer(request: httpx.Request) -> httpx.Response:
            used.append(index)
            await gate.wait()
            return httpx.Response(200, stream=Body())

        return httpx.MockTransport(answer)

    transport = PooledTransport(make, 3 * POOL_SIZE)
    assert sizes == [POOL_SIZE] * 3
    async with httpx.AsyncClient(transport=transport) as client:
        calls = [asyncio.create_task(client.get("http://cloud.test/x")) for _ in range(6)]
        await asyncio.sleep(0)  # all six are in their pools, waiting for the gate
        gate.set()
        answers = await asyncio.gather(*calls)
        assert sorted(used) == [0, 0, 1, 1, 2, 2]
        assert all(r.status_code == 200 for r in answers)
        used.clear()
        # Closed responses leave their pool: the next request goes to the first pool again.
        await client.get("http://cloud.test/x")
        assert used == [0]
        async with client.stream("GET", "http://cloud.test/x"):
            await client.get("http://cloud.test/x")  # pool 0 is busy until the stream closes
        assert used == [0, 0, 1]


async def test_a_failed_request_leaves_its_pool() -> None:
    def make(size: int) -> httpx.AsyncBaseTransport:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        return httpx.MockTransport(refuse)

    transport = PooledTransport(make, 2 * POOL_SIZE)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("http://cloud.test/x")
    assert transport._busy == [0, 0]
