"""The client's rate limit holds at the cloud, not only where tokens are handed out: a request that waits for a
connection after its token would otherwise reach the cloud together with the ones granted after it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from ecs_nic_operator.cloud import EcsClient, TokenAuth, TokenBucket
from ecs_nic_operator.fence import FENCE, Fence, Fenced

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
QPS, BURST, CONNECTIONS, CALLS = 20.0, 1, 4, 40


class HeldCloud:
    """Answers list calls; holds the first ones until released, as a slow cloud holds its connections."""

    def __init__(self, hold: int) -> None:
        self.arrivals: list[float] = []
        self.release = asyncio.Event()
        self.all_held = asyncio.Event()
        self._hold = hold

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        if len(self.arrivals) <= self._hold:
            if len(self.arrivals) == self._hold:
                self.all_held.set()
            await self.release.wait()
        return web.json_response({"interfaceAttachments": []})

    def peak(self) -> int:
        """The most arrivals in any one-second window (t - 1, t]."""
        times = sorted(self.arrivals)
        return max(sum(1 for u in times if t - 1.0 < u <= t) for t in times)


@pytest.fixture
async def cloud() -> AsyncIterator[tuple[HeldCloud, str]]:
    held = HeldCloud(hold=CONNECTIONS)
    app = web.Application()
    app.router.add_get("/v2.1/{project}/servers/{server}/os-interface", held.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield held, f"http://{host}:{port}"
    held.release.set()
    await runner.cleanup()


async def test_requests_that_waited_for_a_connection_do_not_reach_the_cloud_in_a_burst(
    cloud: tuple[HeldCloud, str],
) -> None:
    held, url = cloud
    limiter = TokenBucket(QPS, BURST)
    async with EcsClient(url, PROJECT, TokenAuth("t"), limiter=limiter, max_connections=CONNECTIONS) as ecs:
        calls = asyncio.gather(*(ecs.list(SERVER) for _ in range(CALLS)))
        # Every connection is held by a call the cloud has not answered; meanwhile the rest wait for one.
        await asyncio.wait_for(held.all_held.wait(), 5.0)
        await asyncio.sleep(1.0)
        held.release.set()  # the cloud answers them all at once, and the waiting calls get their connections
        await calls
    assert len(held.arrivals) == CALLS
    assert held.peak() <= QPS + BURST, f"{held.peak()} calls in one second at the cloud, ceiling {QPS + BURST}"


@pytest.fixture
def fence() -> Iterator[Fence]:
    saved = dict(FENCE.__dict__)
    yield FENCE
    FENCE.__dict__.update(saved)


async def test_a_lease_lost_while_a_request_waits_for_its_token_sends_nothing(
    cloud: tuple[HeldCloud, str], fence: Fence
) -> None:
    held, url = cloud
    held.release.set()
    fence.enforce()
    fence.open_until(time.monotonic() + 60.0)
    async with EcsClient(url, PROJECT, TokenAuth("t"), limiter=TokenBucket(1.0, 1)) as ecs:
        await ecs.list(SERVER)  # takes the only token
        waiting = asyncio.create_task(ecs.list(SERVER))  # past the first fence check, waiting for the next token
        await asyncio.sleep(0.5)
        assert ecs.limiter is not None and ecs.limiter.waiting == 1
        fence.close()
        with pytest.raises(Fenced):
            await waiting
    assert len(held.arrivals) == 1
