"""Nova os-interface semantics: attach, list, show, detach, errors, quotas, IPs, lazy state."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from ecs_nic_operator.simulator import Simulator

from .conftest import (
    NET,
    NET_SMALL,
    PORT_FREE,
    PORT_FREE_2,
    SERVER_A,
    SERVER_B,
    SUBNET,
    iface_url,
    wait_for,
)

MAC_RE = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


async def attach(client: httpx.AsyncClient, server: str = SERVER_A, **spec: object) -> httpx.Response:
    return await client.post(iface_url(server), json={"interfaceAttachment": spec})


def error(resp: httpx.Response, kind: str) -> str:
    body = resp.json()
    assert list(body) == [kind], body
    assert body[kind]["code"] == resp.status_code
    message = body[kind]["message"]
    assert isinstance(message, str)
    return message


async def test_attach_by_net_id_shape_and_down_then_active(client: httpx.AsyncClient) -> None:
    r = await attach(client, net_id=NET)
    assert r.status_code == 200
    att = r.json()["interfaceAttachment"]
    assert set(att) == {"port_state", "fixed_ips", "port_id", "net_id", "mac_addr"}
    assert att["port_state"] == "DOWN"
    assert att["net_id"] == NET
    # seeded free ports took .2 and .3; network address and .1 gateway are skipped
    assert att["fixed_ips"] == [{"subnet_id": SUBNET, "ip_address": "192.168.0.4"}]
    assert uuid.UUID(att["port_id"]).version == 4
    assert MAC_RE.match(att["mac_addr"])

    async def active() -> bool:
        r = await client.get(iface_url(port=att["port_id"]))
        return bool(r.json()["interfaceAttachment"]["port_state"] == "ACTIVE")

    await wait_for(active)


async def test_sequential_ips_and_unique_macs(client: httpx.AsyncClient) -> None:
    ips, macs = [], set()
    for _ in range(3):
        r = await attach(client, SERVER_B, net_id=NET)
        ips.append(r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"])
        macs.add(r.json()["interfaceAttachment"]["mac_addr"])
    assert ips == ["192.168.0.4", "192.168.0.5", "192.168.0.6"]
    assert len(macs) == 3


async def test_small_network_runs_out_and_skips_broadcast(client: httpx.AsyncClient) -> None:
    # 10.0.0.0/29: hosts .2 .. .6 (0 network, .1 gateway, .7 broadcast)
    got = []
    for _ in range(5):
        r = await attach(client, SERVER_B, net_id=NET_SMALL)
        assert r.status_code == 200, r.text
        got.append(r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"])
    assert got == [f"10.0.0.{i}" for i in range(2, 7)]
    r = await attach(client, SERVER_B, net_id=NET_SMALL)
    assert r.status_code == 409


async def test_fixed_ip(client: httpx.AsyncClient) -> None:
    r = await attach(client, net_id=NET, fixed_ips=[{"ip_address": "192.168.7.7"}])
    assert r.status_code == 200
    assert r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"] == "192.168.7.7"
    r = await attach(client, SERVER_B, net_id=NET, fixed_ips=[{"ip_address": "192.168.7.7"}])
    assert r.status_code == 409
    assert error(r, "conflictingRequest") == (f"Fixed IP address 192.168.7.7 is already in use on instance {SERVER_A}.")
    r = await attach(client, SERVER_B, net_id=NET, fixed_ips=[{"ip_address": "10.9.9.9"}])
    assert r.status_code == 400
    assert "not a valid IP for the specified subnet" in error(r, "badRequest")
    r = await attach(client, SERVER_B, net_id=NET, fixed_ips=[{"ip_address": "not-an-ip"}])
    assert r.status_code == 400


async def test_request_validation(client: httpx.AsyncClient) -> None:
    r = await attach(client, net_id=NET, port_id=PORT_FREE)
    assert r.status_code == 400
    assert "both" in error(r, "badRequest")
    r = await attach(client, port_id=PORT_FREE, fixed_ips=[{"ip_address": "192.168.9.9"}])
    assert r.status_code == 400
    r = await attach(client, net_id=NET, fixed_ips=[{"ip_address": "192.168.9.9"}, {"ip_address": "192.168.9.10"}])
    assert r.status_code == 400
    r = await attach(client, net_id=NET, bogus=1)
    assert r.status_code == 400
    r = await client.post(iface_url(), content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert (await client.get(iface_url())).json() == {"interfaceAttachments": []}


async def test_not_found_messages(client: httpx.AsyncClient) -> None:
    ghost = str(uuid.uuid4())
    r = await attach(client, ghost, net_id=NET)
    assert r.status_code == 404
    assert error(r, "itemNotFound") == f"Instance {ghost} could not be found."
    r = await attach(client, net_id=ghost)
    assert error(r, "itemNotFound") == f"Network {ghost} could not be found."
    r = await attach(client, port_id=ghost)
    assert error(r, "itemNotFound") == f"Port {ghost} could not be found."
    assert (await client.get(iface_url(ghost))).status_code == 404
    assert (await client.get(iface_url(port=ghost))).status_code == 404
    r = await client.delete(iface_url(port=ghost))
    assert r.status_code == 404
    error(r, "itemNotFound")


async def test_port_in_use_on_any_server(client: httpx.AsyncClient) -> None:
    assert (await attach(client, port_id=PORT_FREE)).status_code == 200
    for server in (SERVER_A, SERVER_B):
        r = await attach(client, server, port_id=PORT_FREE)
        assert r.status_code == 409
        assert error(r, "conflictingRequest") == f"Port {PORT_FREE} is still in use."


async def test_max_nics_quota(client: httpx.AsyncClient) -> None:
    for _ in range(3):  # SERVER_A has maxNics 3
        assert (await attach(client, net_id=NET)).status_code == 200
    r = await attach(client, net_id=NET)
    assert r.status_code == 403
    assert error(r, "forbidden") == "Maximum number of ports exceeded"
    r = await attach(client, port_id=PORT_FREE)
    assert r.status_code == 403


async def test_list_and_show(client: httpx.AsyncClient) -> None:
    a = (await attach(client, net_id=NET)).json()["interfaceAttachment"]
    b = (await attach(client, port_id=PORT_FREE)).json()["interfaceAttachment"]
    listed = (await client.get(iface_url())).json()["interfaceAttachments"]
    assert [x["port_id"] for x in listed] == [a["port_id"], PORT_FREE]
    assert b["fixed_ips"][0]["ip_address"] == "192.168.0.2"  # the seeded port keeps its address
    shown = (await client.get(iface_url(port=PORT_FREE))).json()["interfaceAttachment"]
    assert shown == listed[1]
    r = await client.get(iface_url(SERVER_B, PORT_FREE))
    assert r.status_code == 404
    error(r, "itemNotFound")


async def test_detach_is_asynchronous_and_created_port_is_deleted(client: httpx.AsyncClient, sim: Simulator) -> None:
    att = (await attach(client, net_id=NET)).json()["interfaceAttachment"]
    pid = att["port_id"]
    r = await client.delete(iface_url(port=pid))
    assert r.status_code == 202
    assert r.content == b""
    # still listed right after the 202, state unchanged
    listed = (await client.get(iface_url())).json()["interfaceAttachments"]
    assert [x["port_id"] for x in listed] == [pid]
    assert listed[0]["port_state"] == "DOWN"

    async def gone() -> bool:
        r = await client.get(iface_url())
        return bool(r.json()["interfaceAttachments"] == [])

    await wait_for(gone)
    assert (await client.get(iface_url(port=pid))).status_code == 404
    assert (await client.delete(iface_url(port=pid))).status_code == 404
    # the port itself is gone: it cannot be attached by id, and its IP is free again
    assert (await attach(client, port_id=pid)).status_code == 404
    again = (await attach(client, net_id=NET)).json()["interfaceAttachment"]
    assert again["fixed_ips"][0]["ip_address"] == att["fixed_ips"][0]["ip_address"]
    assert pid not in sim.state()["freePorts"]


async def test_seeded_port_survives_detach(client: httpx.AsyncClient, sim: Simulator) -> None:
    assert (await attach(client, port_id=PORT_FREE_2)).status_code == 200
    assert PORT_FREE_2 not in sim.state()["freePorts"]
    assert (await client.delete(iface_url(port=PORT_FREE_2))).status_code == 202

    async def free() -> bool:
        return PORT_FREE_2 in sim.state()["freePorts"]

    await wait_for(free)
    r = await attach(client, SERVER_B, port_id=PORT_FREE_2)
    assert r.status_code == 200
    assert r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"] == "192.168.0.3"


async def test_repeated_delete_while_detaching_is_accepted(client: httpx.AsyncClient) -> None:
    # Long enough that the second DELETE surely finds the port still detaching on a loaded machine.
    assert (await client.put("/_simulator/behaviour", json={"detachAfter": 30})).status_code == 200
    pid = (await attach(client, net_id=NET)).json()["interfaceAttachment"]["port_id"]
    assert (await client.delete(iface_url(port=pid))).status_code == 202
    assert (await client.delete(iface_url(port=pid))).status_code == 202


async def test_detaching_port_counts_against_quota(client: httpx.AsyncClient) -> None:
    pids = [(await attach(client, net_id=NET)).json()["interfaceAttachment"]["port_id"] for _ in range(3)]
    assert (await client.delete(iface_url(port=pids[0]))).status_code == 202
    assert (await attach(client, net_id=NET)).status_code == 403

    async def room() -> bool:
        return (await attach(client, net_id=NET)).status_code == 200

    await wait_for(room)


async def test_microversion(client: httpx.AsyncClient) -> None:
    await attach(client, net_id=NET)
    r = await client.get(iface_url(), headers={"OpenStack-API-Version": "compute 2.70"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.70"
    assert r.json()["interfaceAttachments"][0]["tag"] is None
    r = await client.get(iface_url())
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "tag" not in r.json()["interfaceAttachments"][0]
    r = await client.get(iface_url(), headers={"X-OpenStack-Nova-API-Version": "2.80"})
    assert r.status_code == 406


async def test_project_mismatch(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v2.1/{'0' * 32}/servers/{SERVER_A}/os-interface")
    assert r.status_code == 400
    assert "doesn't match" in error(r, "badRequest")


async def test_version_documents(anon: httpx.AsyncClient, sim: Simulator) -> None:
    r = await anon.get("/")
    assert r.status_code == 200
    ids = {v["id"]: v for v in r.json()["versions"]}
    assert ids["v2.1"]["status"] == "CURRENT"
    for path in ("/v2.1/", "/v2.1"):
        v = (await anon.get(path)).json()["version"]
        assert v["id"] == "v2.1"
        assert v["status"] == "CURRENT"
        assert v["version"] == "2.79"
        assert v["min_version"] == "2.1"
        assert {"rel": "self", "href": f"{sim.url}/v2.1/"} in v["links"]


async def test_every_response_has_a_request_id(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    responses = [
        await anon.get("/"),
        await anon.get(iface_url()),
        await client.get(iface_url()),
        await client.get(iface_url(port=PORT_FREE)),
        await anon.get("/_simulator/state"),
        await anon.get("/nowhere"),
    ]
    rids = [r.headers["X-Request-Id"] for r in responses]
    assert all(re.match(r"^req-[0-9a-f-]{36}$", rid) for rid in rids)
    assert len(set(rids)) == len(rids)


async def test_state_counts_calls_and_peak(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    await client.get(iface_url())
    await anon.get(iface_url())  # rejected by auth: counted too
    await attach(client, net_id=NET)
    await client.get(iface_url(port=PORT_FREE))
    state = (await anon.get("/_simulator/state")).json()
    assert state["calls"] == {
        "GET /v2.1/{project_id}/servers/{server_id}/os-interface": 2,
        "POST /v2.1/{project_id}/servers/{server_id}/os-interface": 1,
        "GET /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}": 1,
    }
    assert 1 <= state["peakCallsPerSecond"] <= 4
    assert [a["net_id"] for a in state["servers"][SERVER_A]] == [NET]
    assert state["servers"][SERVER_B] == []
    assert (await anon.post("/_simulator/reset")).status_code == 204
    state = (await anon.get("/_simulator/state")).json()
    assert state["calls"] == {}
    assert state["peakCallsPerSecond"] == 0


async def test_state_matches_method(client: httpx.AsyncClient, sim: Simulator) -> None:
    await attach(client, net_id=NET)
    assert sim.state() == (await client.get("/_simulator/state")).json()


async def test_peak_calls_per_second(client: httpx.AsyncClient, sim: Simulator) -> None:
    await asyncio.gather(*(client.get(iface_url()) for _ in range(30)))
    assert sim.state()["peakCallsPerSecond"] >= 30
