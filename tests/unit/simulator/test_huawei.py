"""The Huawei dialect: the same situations answered with Huawei's codes (and Nova's answers in the nova dialect),
server states, lost replies, stuck operations and the v1 read calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from ecs_nic_operator.simulator import Simulator

from .conftest import NET, NET_SMALL, PORT_FREE, PROJECT, SERVER_A, SERVER_B, TOKEN, iface_url, make_seed, wait_for

GHOST = "99999999-9999-4999-8999-999999999999"


@asynccontextmanager
async def serving(**behaviour: Any) -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    sim = Simulator(make_seed(**behaviour))
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": TOKEN}, timeout=10) as client:
            yield sim, client
    finally:
        await sim.stop()


def attach_body(**spec: Any) -> dict[str, Any]:
    return {"interfaceAttachment": spec or {"net_id": NET}}


async def fill(client: httpx.AsyncClient, server: str, n: int) -> list[str]:
    ports = []
    for _ in range(n):
        r = await client.post(iface_url(server), json=attach_body())
        assert r.status_code == 200, r.text
        ports.append(r.json()["interfaceAttachment"]["port_id"])
    return ports


# Each situation: how to set it up and make the call, then (Huawei status, code) and (Nova status, kind).
Situation = Callable[[httpx.AsyncClient, Simulator], Awaitable[httpx.Response]]


async def server_missing(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    return await c.get(iface_url(GHOST))


async def network_missing(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    return await c.post(iface_url(), json=attach_body(net_id=GHOST))


async def port_elsewhere(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    assert (await c.post(iface_url(SERVER_B), json=attach_body(port_id=PORT_FREE))).status_code == 200
    return await c.post(iface_url(), json=attach_body(port_id=PORT_FREE))


async def ip_in_use(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    body = attach_body(net_id=NET, fixed_ips=[{"ip_address": "192.168.7.7"}])
    assert (await c.post(iface_url(SERVER_B), json=body)).status_code == 200
    return await c.post(iface_url(), json=body)


async def ip_outside(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    return await c.post(iface_url(), json=attach_body(net_id=NET, fixed_ips=[{"ip_address": "10.99.0.5"}]))


async def subnet_full(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    # NET_SMALL is a /29: five usable host addresses after the gateway.
    for _ in range(5):
        assert (await c.post(iface_url(SERVER_B), json=attach_body(net_id=NET_SMALL))).status_code == 200
    return await c.post(iface_url(SERVER_B), json=attach_body(net_id=NET_SMALL))


async def quota(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    await fill(c, SERVER_A, 3)  # maxNics 3
    return await c.post(iface_url(), json=attach_body())


async def busy(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    await c.put("/_simulator/behaviour", json={"busyFirst": 1})
    return await c.post(iface_url(), json=attach_body())


async def locked(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    assert (await c.put(f"/_simulator/servers/{SERVER_A}", json={"state": "locked"})).status_code == 200
    return await c.post(iface_url(), json=attach_body())


async def unknown_api(c: httpx.AsyncClient, s: Simulator) -> httpx.Response:
    return await c.get(f"/v2.1/{PROJECT}/servers/{SERVER_A}/os-interfaces")


SITUATIONS: list[tuple[str, Situation, tuple[int, str], tuple[int, str | None]]] = [
    ("server-missing", server_missing, (404, "Ecs.0614"), (404, "itemNotFound")),
    ("network-missing", network_missing, (400, "Ecs.0038"), (404, "itemNotFound")),
    ("port-elsewhere", port_elsewhere, (400, "Ecs.0919"), (409, "conflictingRequest")),
    ("ip-in-use", ip_in_use, (400, "Ecs.0010"), (409, "conflictingRequest")),
    ("ip-outside-subnet", ip_outside, (400, "Ecs.0039"), (400, "badRequest")),
    ("subnet-exhausted", subnet_full, (400, "Ecs.0012"), (409, "conflictingRequest")),
    ("nic-quota", quota, (400, "Ecs.0050"), (403, "forbidden")),
    ("busy", busy, (400, "Ecs.0100"), (409, "conflictingRequest")),
    ("locked", locked, (400, "Ecs.0605"), (409, "conflictingRequest")),
    ("unknown-api", unknown_api, (404, "APIGW.0101"), (404, None)),
]


def code_of(r: httpx.Response) -> str | None:
    try:
        doc = r.json()
    except ValueError:
        return None
    if "error_code" in doc:
        return str(doc["error_code"])
    if isinstance(doc.get("error"), dict):
        return str(doc["error"]["code"])
    return str(next(iter(doc)))


@pytest.mark.parametrize(("name", "make", "huawei", "nova"), SITUATIONS, ids=[s[0] for s in SITUATIONS])
async def test_same_situation_in_both_dialects(
    name: str, make: Situation, huawei: tuple[int, str], nova: tuple[int, str | None]
) -> None:
    async with serving(dialect="huawei") as (sim, client):
        r = await make(client, sim)
        assert (r.status_code, code_of(r)) == huawei, r.text
        assert r.headers["X-Request-Id"].startswith("req-")
    async with serving(dialect="nova") as (sim, client):
        r = await make(client, sim)
        assert (r.status_code, code_of(r)) == nova, r.text


async def test_busy_server_is_in_a_task_state_after_each_accepted_call() -> None:
    async with serving(dialect="huawei", taskTime=0.3) as (sim, client):
        assert (await client.put(f"/_simulator/servers/{SERVER_B}", json={"state": "busy"})).status_code == 200
        r = await client.post(iface_url(SERVER_B), json=attach_body())
        assert (r.status_code, code_of(r)) == (400, "Ecs.0100")  # busy from the start

        async def accepted() -> bool:
            return (await client.post(iface_url(SERVER_B), json=attach_body())).status_code == 200

        await wait_for(accepted, within=3)
        r = await client.post(iface_url(SERVER_B), json=attach_body())
        assert (r.status_code, code_of(r)) == (400, "Ecs.0100")  # the accepted attach started a task
        assert (await client.get(iface_url(SERVER_B))).status_code == 200  # reads are never refused
        assert sim.state()["serverStates"][SERVER_B] == "busy"


async def test_busy_may_answer_ecs_0603_with_501() -> None:
    async with serving(dialect="huawei", busyFirst=1, busy501Rate=1.0) as (_sim, client):
        r = await client.post(iface_url(), json=attach_body())
        assert (r.status_code, code_of(r)) == (501, "Ecs.0603")
        assert "1 minute" in r.json()["error"]["message"]


async def test_lost_reply_attaches_and_answers_a_gateway_504() -> None:
    async with serving(dialect="huawei", lostReplyRate=1.0) as (sim, client):
        r = await client.post(iface_url(), json=attach_body())
        assert r.status_code == 504
        assert r.json() == {"error_code": "APIGW.0202", "error_msg": "Backend timeout"}
        assert len(sim.state()["servers"][SERVER_A]) == 1  # the attach happened
        # Refusals are not lost: only a change the cloud made loses its answer.
        r = await client.post(iface_url(), json=attach_body(net_id=GHOST))
        assert r.status_code == 400


async def test_stuck_detach_stays_until_the_server_is_stopped_or_a_repeat_gets_through() -> None:
    async with serving(dialect="huawei", detachStuckRate=1.0, detachAfter=0) as (sim, client):
        first, second = await fill(client, SERVER_B, 2)
        for port in (first, second):
            assert (await client.delete(iface_url(SERVER_B, port))).status_code == 202
        assert sim.state()["stuck"]["detach"] == sorted([first, second])
        listed = {p["port_id"] for p in (await client.get(iface_url(SERVER_B))).json()["interfaceAttachments"]}
        assert listed == {first, second}
        # A repeat DELETE draws again: with the rate back at 0 it goes through.
        await client.put("/_simulator/behaviour", json={"detachStuckRate": 0})
        assert (await client.delete(iface_url(SERVER_B, first))).status_code == 202
        assert [p["port_id"] for p in sim.state()["servers"][SERVER_B]] == [second]
        # Stopping the server lets the other one finish.
        assert (await client.put(f"/_simulator/servers/{SERVER_B}", json={"state": "stopped"})).status_code == 200
        assert sim.state()["servers"][SERVER_B] == []
        assert sim.state()["stuck"]["detach"] == []


async def test_stuck_attach_stays_down_until_the_server_state_changes() -> None:
    async with serving(dialect="huawei", attachStuckRate=1.0, activeAfter=0) as (sim, client):
        (port,) = await fill(client, SERVER_B, 1)
        shown = (await client.get(iface_url(SERVER_B, port))).json()["interfaceAttachment"]
        assert shown["port_state"] == "DOWN"
        assert sim.state()["stuck"]["attach"] == [port]
        await client.put(f"/_simulator/servers/{SERVER_B}", json={"state": "ACTIVE"})
        shown = (await client.get(iface_url(SERVER_B, port))).json()["interfaceAttachment"]
        assert shown["port_state"] == "ACTIVE"


async def test_v1_list_and_attachable_count() -> None:
    async with serving(dialect="huawei") as (_sim, client):
        ports = await fill(client, SERVER_A, 2)
        r = await client.get(f"/v1/{PROJECT}/cloudservers/{SERVER_A}/os-interface")
        assert r.status_code == 200
        doc = r.json()
        assert doc["attachableQuantity"] == {"free_nic": 1}  # maxNics 3
        nics = doc["interfaceAttachments"]
        assert [n["port_id"] for n in nics] == ports
        assert {n["driver_mode"] for n in nics} == {"virtio"}
        assert len({n["pci_address"] for n in nics}) == 2
        assert all(n["pci_address"].startswith("0000:00:") and n["delete_on_termination"] for n in nics)
        r = await client.get(f"/v1/{PROJECT}/cloudservers/{SERVER_A}/os-interface_extension")
        assert r.status_code == 200
        assert r.json()["attachableQuantity"]["free_nic"] == 1
        assert [n["port_id"] for n in r.json()["interfaceAttachments"]] == ports
        r = await client.get(f"/v1/{PROJECT}/cloudservers/{GHOST}/os-interface_extension")
        assert (r.status_code, code_of(r)) == (404, "Ecs.0614")
        anonymous = await client.get(
            f"/v1/{PROJECT}/cloudservers/{SERVER_A}/os-interface", headers={"X-Auth-Token": "wrong"}
        )
        assert (anonymous.status_code, code_of(anonymous)) == (401, "APIGW.0301")
    async with serving(dialect="nova") as (_sim, client):
        assert (await client.get(f"/v1/{PROJECT}/cloudservers/{SERVER_A}/os-interface")).status_code == 404
        anonymous = await client.get(
            f"/v1/{PROJECT}/cloudservers/{SERVER_A}/os-interface", headers={"X-Auth-Token": ""}
        )
        assert anonymous.status_code == 404  # no such API, whoever asks


async def test_seed_and_control_validate_dialect_and_states() -> None:
    with pytest.raises(ValueError, match="dialect"):
        Simulator(make_seed(dialect="aws"))
    seed = make_seed()
    seed["servers"][0]["state"] = "melting"
    with pytest.raises(ValueError, match="state"):
        Simulator(seed)
    async with serving() as (sim, client):
        assert (await client.put(f"/_simulator/servers/{SERVER_A}", json={"state": "melting"})).status_code == 400
        assert (await client.put(f"/_simulator/servers/{GHOST}", json={"state": "locked"})).status_code == 404
        assert (await client.put("/_simulator/behaviour", json={"dialect": "aws"})).status_code == 400
        assert (await client.put("/_simulator/behaviour", json={"dialect": "huawei"})).status_code == 200
        assert sim.state()["dialect"] == "huawei"


async def test_credentials_rotate_through_the_control_endpoint() -> None:
    async with serving(dialect="huawei") as (_sim, client):
        r = await client.put("/_simulator/credentials", json={"token": "rotated-token"})
        assert r.status_code == 204
        assert (await client.get(iface_url())).status_code == 401  # the old token is no longer accepted
        assert (await client.get(iface_url(), headers={"X-Auth-Token": "rotated-token"})).status_code == 200
        assert (await client.put("/_simulator/credentials", json={"password2": "x"})).status_code == 400
