"""Control endpoints, seeds, default world, run_in_thread, ``python -m`` and scale."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from ecs_nic_operator.simulator import (
    SeedError,
    Simulator,
    default_seed,
    load_seed,
    run_in_thread,
    seed_to_yaml,
)

from .conftest import NET, PORT_FREE, SERVER_A, TOKEN, iface_url, make_seed

ROOT = Path(__file__).resolve().parents[3]


async def test_add_and_delete_server(client: httpx.AsyncClient, sim: Simulator) -> None:
    new = "99999999-9999-4999-8999-999999999999"
    r = await client.post("/_simulator/servers", json={"id": new, "maxNics": 1})
    assert r.status_code == 201
    assert (await client.post("/_simulator/servers", json={"id": new})).status_code == 409
    url = iface_url(new)
    r = await client.post(url, json={"interfaceAttachment": {"net_id": NET}})
    assert r.status_code == 200
    created = r.json()["interfaceAttachment"]["port_id"]
    assert (await client.post(url, json={"interfaceAttachment": {"port_id": PORT_FREE}})).status_code == 403
    assert new in sim.state()["servers"]

    # a server deleted with a created port and a seeded port: created one dies, seeded one is freed
    other = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    await client.post("/_simulator/servers", json={"id": other, "maxNics": 4})
    await client.post(iface_url(other), json={"interfaceAttachment": {"port_id": PORT_FREE}})
    assert (await client.delete(f"/_simulator/servers/{other}")).status_code == 204
    assert (await client.delete(f"/_simulator/servers/{new}")).status_code == 204
    assert (await client.delete(f"/_simulator/servers/{new}")).status_code == 404
    state = sim.state()
    assert new not in state["servers"]
    assert PORT_FREE in state["freePorts"]
    assert created not in state["freePorts"]
    r = await client.get(url)
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Instance {new} could not be found."


async def test_add_port_and_force_detach(client: httpx.AsyncClient, sim: Simulator) -> None:
    r = await client.post("/_simulator/ports", json={"netId": NET, "ipAddress": "192.168.50.5"})
    assert r.status_code == 201
    pid = r.json()["port_id"]
    assert r.json()["fixed_ips"][0]["ip_address"] == "192.168.50.5"
    assert pid in sim.state()["freePorts"]
    assert (await client.post(iface_url(), json={"interfaceAttachment": {"port_id": pid}})).status_code == 200
    assert (await client.delete(f"/_simulator/servers/{SERVER_A}/ports/{pid}")).status_code == 204
    assert (await client.get(iface_url(port=pid))).status_code == 404
    assert pid in sim.state()["freePorts"]
    r = await client.post("/_simulator/ports", json={"netId": "nope"})
    assert r.status_code == 404


async def test_add_network(client: httpx.AsyncClient, sim: Simulator) -> None:
    net = "12345678-1234-4234-8234-123456789abc"
    body = {"id": net, "subnetId": "sub-new", "cidr": "172.16.0.0/24"}
    assert (await client.post(iface_url(), json={"interfaceAttachment": {"net_id": net}})).status_code == 404
    assert (await client.post("/_simulator/networks", json=body)).status_code == 201
    assert (await client.post("/_simulator/networks", json=body)).status_code == 409
    r = await client.post(iface_url(), json={"interfaceAttachment": {"net_id": net}})
    assert r.status_code == 200
    assert r.json()["interfaceAttachment"]["fixed_ips"] == [{"subnet_id": "sub-new", "ip_address": "172.16.0.2"}]
    r = await client.post("/_simulator/networks", json={"id": "other", "cidr": "not-a-cidr"})
    assert r.status_code == 400


async def test_behaviour_merge(client: httpx.AsyncClient, sim: Simulator) -> None:
    r = await client.put("/_simulator/behaviour", json={"activeAfter": 0})
    assert r.json()["behaviour"]["activeAfter"] == 0
    assert r.json()["behaviour"]["detachAfter"] == 0.2  # untouched
    att = (await client.post(iface_url(), json={"interfaceAttachment": {"net_id": NET}})).json()
    assert att["interfaceAttachment"]["port_state"] == "ACTIVE"
    assert (await client.put("/_simulator/behaviour", content=b"[1]")).status_code == 400


def test_default_seed_is_deterministic_and_printable() -> None:
    a, b = default_seed(), default_seed()
    assert a == b
    assert len(a["servers"]) == 4
    assert len(a["networks"]) == 2
    assert a["ports"]
    assert a["projectId"] == "0605767ea3000f0b2f0ac01c2e4ce6bd"
    assert set(a["credentials"]) >= {"token", "accessKey", "secretKey", "username", "password", "domainName"}
    assert yaml.safe_load(seed_to_yaml(a)) == a


def test_load_seed_yaml_and_json(tmp_path: Path) -> None:
    seed = make_seed()
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(seed))
    (tmp_path / "s.json").write_text(json.dumps(seed))
    y, j = load_seed(tmp_path / "s.yaml"), load_seed(str(tmp_path / "s.json"))
    assert y == j
    assert y["servers"][0] == {"id": SERVER_A, "maxNics": 3, "state": "ACTIVE"}
    assert y["behaviour"]["activeAfter"] == 0.2
    assert y["behaviour"]["qps"] == 0  # defaults filled in


def test_bad_seeds(tmp_path: Path) -> None:
    bad = make_seed()
    bad["ports"] = [{"id": "p", "netId": "missing"}]
    with pytest.raises(SeedError):
        Simulator(bad)
    bad = make_seed()
    bad["networks"][0]["cidr"] = "not-a-cidr"
    with pytest.raises(SeedError):
        Simulator(bad)
    bad = make_seed(unknownKnob=1)
    with pytest.raises(SeedError):
        Simulator(bad)
    bad = make_seed()
    bad["ports"][0]["ipAddress"] = "10.1.1.1"  # outside 192.168.0.0/16
    with pytest.raises(SeedError):
        Simulator(bad)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SeedError):
        load_seed(tmp_path / "list.yaml")


async def test_preattached_primary_port() -> None:
    seed = make_seed()
    seed["ports"].append({"id": "primary-1", "netId": NET, "serverId": SERVER_A, "primary": True})
    sim = Simulator(seed)
    url = await sim.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": TOKEN}) as c:
            listed = (await c.get(iface_url())).json()["interfaceAttachments"]
            assert [(a["port_id"], a["port_state"]) for a in listed] == [("primary-1", "ACTIVE")]
            r = await c.delete(iface_url(port="primary-1"))
            assert r.status_code == 403
    finally:
        await sim.stop()


def test_run_in_thread() -> None:
    url, stop = run_in_thread(make_seed())
    try:
        with httpx.Client(base_url=url, headers={"X-Auth-Token": TOKEN}) as c:
            r = c.post(iface_url(), json={"interfaceAttachment": {"net_id": NET}})
            assert r.status_code == 200
            assert len(c.get("/_simulator/state").json()["servers"][SERVER_A]) == 1
            assert len(stop.simulator.state()["servers"][SERVER_A]) == 1
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/")


@pytest.mark.parametrize("with_seed", [True, False])
def test_python_dash_m(tmp_path: Path, with_seed: bool) -> None:
    args = [sys.executable, "-m", "ecs_nic_operator.simulator", "--port", "0"]
    if with_seed:
        (tmp_path / "seed.yaml").write_text(yaml.safe_dump(make_seed()))
        args += ["--seed", str(tmp_path / "seed.yaml")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "simulator exited early"
            lines.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            url = m.group(1) if m else None
        assert url is not None
        if not with_seed:
            printed = yaml.safe_load("".join(lines[:-1]))
            assert printed == default_seed()
        assert httpx.get(url + "/v2.1/").json()["version"]["id"] == "v2.1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ten_thousand_ports_scale() -> None:
    """A world of 10,000 free ports and 1,000 servers; attaching and detaching stays fast."""
    seed = make_seed(activeAfter=0, detachAfter=0.2)
    seed["servers"] = [{"id": f"srv-{i}", "maxNics": 20} for i in range(1000)]
    seed["ports"] = [{"id": f"port-{i}", "netId": NET} for i in range(10_000)]
    t0 = time.monotonic()
    sim = Simulator(seed)
    world = sim.world
    # The world's own clock stands still while the calls run, so "detached 0.2 s ago" does not depend on how
    # fast this machine runs 21,000 calls (on a loaded one, early detaches were already gone at the snapshot).
    now = [1_000.0]
    world.clock = lambda: now[0]
    for i in range(10_000):
        world.attach(f"srv-{i % 1000}", {"interfaceAttachment": {"port_id": f"port-{i}"}})
    for i in range(1000):
        world.attach(f"srv-{i}", {"interfaceAttachment": {"net_id": NET}})
    for i in range(10_000):
        world.detach(f"srv-{i % 1000}", f"port-{i}")
    assert time.monotonic() - t0 < 10
    snap = sim.state()
    assert sum(len(v) for v in snap["servers"].values()) == 11_000

    now[0] += 0.3  # past detachAfter
    assert sum(len(v) for v in sim.state()["servers"].values()) == 1000
    assert len(sim.state()["freePorts"]) == 10_000
