"""Our client against our simulator, both real, over loopback HTTP: every error class and the rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ecs_nic_operator.cloud import (
    AkSkAuth,
    AuthError,
    CloudUnavailable,
    EcsClient,
    InUse,
    KeystonePasswordAuth,
    NotFound,
    QuotaExceeded,
    ServerBusy,
    Throttled,
    TokenAuth,
    TokenBucket,
)
from ecs_nic_operator.simulator import Simulator
from tests.unit.simulator.conftest import (
    AK,
    MISSING,
    NET,
    PORT_FREE,
    PROJECT,
    SERVER_A,
    SERVER_B,
    SK,
    TOKEN,
    make_seed,
    running,
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running(make_seed()) as simulator:
        yield simulator


def client_for(sim: Simulator, auth: httpx.Auth | None = None, **kw: Any) -> EcsClient:
    return EcsClient(sim.url, PROJECT, auth or TokenAuth(TOKEN), **kw)


async def behave(sim: Simulator, **changes: Any) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(f"{sim.url}/_simulator/behaviour", json=changes)).raise_for_status()


@pytest.mark.parametrize("auth", ["token", "aksk", "password"])
async def test_attach_list_show_detach_with_each_credential_type(sim: Simulator, auth: str) -> None:
    chosen: httpx.Auth = {
        "token": lambda: TokenAuth(TOKEN),
        "aksk": lambda: AkSkAuth(AK, SK, PROJECT),
        "password": lambda: KeystonePasswordAuth(f"{sim.url}/v3", "alice", "s3cret", "acme", PROJECT),
    }[auth]()
    async with client_for(sim, chosen) as ecs:
        made = await ecs.attach(SERVER_B, net_id=NET, fixed_ip="192.168.9.9")
        assert made.port_state == "DOWN" and made.fixed_ips[0].ip_address == "192.168.9.9"
        assert [p.port_id for p in await ecs.list(SERVER_B)] == [made.port_id]
        assert (await ecs.show(SERVER_B, made.port_id)).mac_addr == made.mac_addr
        await ecs.detach(SERVER_B, made.port_id)
        with pytest.raises(NotFound):
            await ecs.detach(SERVER_B, MISSING)


async def test_each_cloud_refusal_maps_to_its_error_class(sim: Simulator) -> None:
    async with client_for(sim) as ecs:
        with pytest.raises(NotFound) as network:
            await ecs.attach(SERVER_B, net_id=MISSING)
        assert network.value.what == "network" and network.value.request_id
        with pytest.raises(NotFound) as server:
            await ecs.list(MISSING)
        assert server.value.what == "server"
        with pytest.raises(NotFound) as port:
            await ecs.attach(SERVER_B, port_id=MISSING)
        assert port.value.what == "port"
        await ecs.attach(SERVER_A, port_id=PORT_FREE)
        with pytest.raises(InUse):
            await ecs.attach(SERVER_B, port_id=PORT_FREE)  # in use on another server
        await ecs.attach(SERVER_B, net_id=NET, fixed_ip="192.168.1.77")
        with pytest.raises(InUse):
            await ecs.attach(SERVER_A, net_id=NET, fixed_ip="192.168.1.77")
        await ecs.attach(SERVER_A, net_id=NET)
        await ecs.attach(SERVER_A, net_id=NET)  # SERVER_A allows 3 NICs
        with pytest.raises(QuotaExceeded):
            await ecs.attach(SERVER_A, net_id=NET)
    async with client_for(sim, TokenAuth("wrong-token")) as bad:
        with pytest.raises(AuthError) as denied:
            await bad.list(SERVER_A)
        assert "wrong-token" not in str(denied.value)


async def test_transient_refusals_are_retryable(sim: Simulator) -> None:
    async with client_for(sim, timeout=0.5) as ecs:
        await behave(sim, busyFirst=1)
        with pytest.raises(ServerBusy):
            await ecs.attach(SERVER_B, net_id=NET)
        await behave(sim, busyFirst=0, failRate=1.0)
        with pytest.raises(CloudUnavailable):
            await ecs.list(SERVER_B)
        await behave(sim, failRate=0, slowRate=1.0, slowDelay=2.0)
        with pytest.raises(CloudUnavailable):
            await ecs.list(SERVER_B)
        await behave(sim, slowRate=0, dropRate=1.0)
        with pytest.raises(CloudUnavailable):
            await ecs.list(SERVER_B)
        await behave(sim, dropRate=0, qps=1, retryAfter=3)
        await ecs.list(SERVER_B)
        with pytest.raises(Throttled) as throttled:
            await ecs.list(SERVER_B)
        assert throttled.value.retry_after == 3.0


async def test_shared_token_bucket_holds_the_ceiling_at_the_cloud(sim: Simulator) -> None:
    import asyncio
    import time

    async with httpx.AsyncClient() as http:
        await http.post(f"{sim.url}/_simulator/reset")
    limiter = TokenBucket(qps=20, burst=1)
    async with client_for(sim, limiter=limiter) as ecs:
        start = time.monotonic()
        await asyncio.gather(*(ecs.list(SERVER_B) for _ in range(40)))
        elapsed = time.monotonic() - start
    assert elapsed >= 39 / 20 * 0.98
    assert sim.state()["peakCallsPerSecond"] <= 21


async def test_attachable_nics_where_the_cloud_says_and_none_where_it_cannot() -> None:
    async with running(make_seed(dialect="huawei")) as huawei, client_for(huawei, AkSkAuth(AK, SK, PROJECT)) as ecs:
        assert await ecs.attachable_nics(SERVER_A) == 3  # maxNics 3
        await ecs.attach(SERVER_A, net_id=NET)
        assert await ecs.attachable_nics(SERVER_A) == 2
        with pytest.raises(NotFound) as info:
            await ecs.attachable_nics(MISSING)
        assert info.value.what == "server" and info.value.code == "Ecs.0614"
    async with running(make_seed(dialect="nova")) as nova, client_for(nova) as ecs:
        assert await ecs.attachable_nics(SERVER_A) is None  # upstream OpenStack has no v1 API


async def test_one_v1_list_answers_the_nics_and_the_count_where_the_cloud_has_it() -> None:
    async with running(make_seed(dialect="huawei")) as huawei, client_for(huawei, AkSkAuth(AK, SK, PROJECT)) as ecs:
        assert await ecs.list_with_room(SERVER_A) == ([], 3)  # maxNics 3
        port = await ecs.attach(SERVER_A, net_id=NET)
        both = await ecs.list_with_room(SERVER_A)
        assert both is not None and [p.port_id for p in both[0]] == [port.port_id] and both[1] == 2
        with pytest.raises(NotFound) as info:
            await ecs.list_with_room(MISSING)
        assert info.value.what == "server" and info.value.code == "Ecs.0614"
        assert huawei.state()["calls"] == {
            "GET /v1/{project_id}/cloudservers/{server_id}/os-interface": 3,
            "POST /v2.1/{project_id}/servers/{server_id}/os-interface": 1,
        }
    async with running(make_seed(dialect="nova")) as nova, client_for(nova) as ecs:
        assert await ecs.list_with_room(SERVER_A) is None  # upstream OpenStack has no v1 API
