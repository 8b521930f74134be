"""Behaviour knobs: busyFirst, failRate, qps, dropRate (+dropAfterCommit), slowRate, latency."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from ecs_nic_operator.simulator import Simulator

from .conftest import NET, SERVER_A, SERVER_B, iface_url


async def set_behaviour(client: httpx.AsyncClient, **values: object) -> None:
    r = await client.put("/_simulator/behaviour", json=values)
    assert r.status_code == 200, r.text


async def attach(client: httpx.AsyncClient, server: str = SERVER_A) -> httpx.Response:
    return await client.post(iface_url(server), json={"interfaceAttachment": {"net_id": NET}})


async def test_busy_first_per_server(client: httpx.AsyncClient) -> None:
    await set_behaviour(client, busyFirst=2)
    for _ in range(2):
        r = await attach(client)
        assert r.status_code == 409
        msg = r.json()["conflictingRequest"]["message"]
        assert msg.startswith(f"Cannot 'attach_interface' instance {SERVER_A} while it is in task_state ")
    assert (await client.get(iface_url())).status_code == 200  # reads are not affected
    r = await attach(client)
    assert r.status_code == 200
    pid = r.json()["interfaceAttachment"]["port_id"]
    assert (await client.delete(iface_url(port=pid))).status_code == 202
    # SERVER_B has its own counter; DELETEs count as mutating calls too
    assert (await attach(client, SERVER_B)).status_code == 409
    r = await client.delete(iface_url(SERVER_B, "00000000-0000-4000-8000-000000000000"))
    assert r.status_code == 409
    assert "'detach_interface'" in r.json()["conflictingRequest"]["message"]
    assert (await attach(client, SERVER_B)).status_code == 200


async def test_fail_rate_alternates_shapes_without_state_change(client: httpx.AsyncClient, sim: Simulator) -> None:
    await set_behaviour(client, failRate=1.0)
    statuses = []
    for _ in range(4):
        r = await attach(client)
        statuses.append(r.status_code)
        if r.status_code == 500:
            assert r.json()["computeFault"]["code"] == 500
        else:
            assert r.status_code == 503
            assert set(r.json()) == {"error_code", "error_msg"}
    assert statuses == [500, 503, 500, 503]
    assert sim.state()["servers"][SERVER_A] == []
    await set_behaviour(client, failRate=0)
    assert (await attach(client)).status_code == 200


async def test_qps_throttle(client: httpx.AsyncClient, sim: Simulator) -> None:
    await set_behaviour(client, qps=3)
    codes = [(await client.get(iface_url())).status_code for _ in range(6)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    r = next(r for r in [await client.get(iface_url()) for _ in range(3)] if r.status_code == 429)
    assert r.json() == {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached"}
    assert "Retry-After" not in r.headers
    await set_behaviour(client, retryAfter=2)
    r = await client.get(iface_url())
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    # every call is counted, throttled or not
    assert sim.state()["calls"]["GET /v2.1/{project_id}/servers/{server_id}/os-interface"] == 10


async def test_qps_recovers_after_a_second(client: httpx.AsyncClient) -> None:
    await set_behaviour(client, qps=2)
    codes = [(await client.get(iface_url())).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    deadline = time.monotonic() + 5
    while (await client.get(iface_url())).status_code == 429:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_drop_get(client: httpx.AsyncClient) -> None:
    await set_behaviour(client, dropRate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(iface_url())


async def test_drop_before_commit(client: httpx.AsyncClient, sim: Simulator) -> None:
    await set_behaviour(client, dropRate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        await attach(client)
    assert sim.state()["servers"][SERVER_A] == []


async def test_drop_after_commit_is_a_lost_response(client: httpx.AsyncClient, sim: Simulator) -> None:
    await set_behaviour(client, dropRate=1.0, dropAfterCommit=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await attach(client)
    attached = sim.state()["servers"][SERVER_A]
    assert len(attached) == 1
    await set_behaviour(client, dropRate=0)
    listed = (await client.get(iface_url())).json()["interfaceAttachments"]
    assert [a["port_id"] for a in listed] == [attached[0]["port_id"]]


async def test_slow_rate(client: httpx.AsyncClient) -> None:
    await set_behaviour(client, slowRate=1.0, slowDelay=0.3)
    t0 = time.monotonic()
    assert (await client.get(iface_url())).status_code == 200
    assert time.monotonic() - t0 >= 0.3


async def test_latency_does_not_block_other_calls(client: httpx.AsyncClient) -> None:
    await set_behaviour(client, latency=0.3)
    t0 = time.monotonic()
    rs = await asyncio.gather(*(client.get(iface_url()) for _ in range(20)))
    elapsed = time.monotonic() - t0
    assert all(r.status_code == 200 for r in rs)
    assert 0.3 <= elapsed < 2.0


async def test_random_seed_reproducible_faults_and_ids(anon: httpx.AsyncClient) -> None:
    async def run() -> tuple[list[int], list[str]]:
        from .conftest import make_seed

        sim = Simulator(make_seed(failRate=0.5, randomSeed=7))
        url = await sim.start()
        try:
            async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": "test-token"}) as c:
                rs = [await attach(c, SERVER_B) for _ in range(10)]
        finally:
            await sim.stop()
        ids = [r.json()["interfaceAttachment"]["port_id"] for r in rs if r.status_code == 200]
        return [r.status_code for r in rs], ids

    first, second = await run(), await run()
    assert first == second
    assert 200 in first[0]
    assert {500, 503} & set(first[0])


async def test_unknown_behaviour_key_rejected(anon: httpx.AsyncClient) -> None:
    r = await anon.put("/_simulator/behaviour", json={"noSuchKnob": 1})
    assert r.status_code == 400
