"""openstacksdk, unchanged, against the simulator: endpoint override + token, and Keystone password."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openstack
import pytest

from ecs_nic_operator.simulator import Simulator, run_in_thread

from .conftest import NET, PORT_FREE, PROJECT, SERVER_A, SUBNET, TOKEN, make_seed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")


@pytest.fixture
def served() -> Iterator[tuple[str, Simulator]]:
    url, stop = run_in_thread(make_seed())
    try:
        yield url, stop.simulator
    finally:
        stop()


def connections(url: str) -> dict[str, Any]:
    compute = f"{url}/v2.1/{PROJECT}"
    return {
        # a static token and the compute endpoint given explicitly (no Keystone involved)
        "admin_token": dict(
            auth_type="admin_token",
            auth={"endpoint": compute, "token": TOKEN},
            compute_endpoint_override=compute,
        ),
        # Keystone v3 password → token + catalog from the simulator's fake Keystone
        "password": dict(
            auth_type="password",
            auth={
                "auth_url": f"{url}/v3",
                "username": "alice",
                "password": "s3cret",
                "user_domain_name": "acme",
                "project_id": PROJECT,
            },
        ),
        # Keystone v3 token method (re-scoping the seed token)
        "token": dict(auth_type="token", auth={"auth_url": f"{url}/v3", "token": TOKEN, "project_id": PROJECT}),
    }


@pytest.mark.parametrize("mode", ["admin_token", "password", "token"])
def test_openstacksdk_server_interfaces(served: tuple[str, Simulator], mode: str) -> None:
    url, sim = served
    conn = openstack.connection.Connection(**connections(url)[mode])
    try:
        created = conn.compute.create_server_interface(SERVER_A, net_id=NET)
        assert created.port_state == "DOWN"
        assert created.net_id == NET
        assert created.fixed_ips[0]["subnet_id"] == SUBNET
        by_port = conn.compute.create_server_interface(SERVER_A, port_id=PORT_FREE)
        assert by_port.port_id == PORT_FREE

        listed = list(conn.compute.server_interfaces(SERVER_A))
        assert [i.port_id for i in listed] == [created.port_id, PORT_FREE]

        deadline = time.monotonic() + 5
        while conn.compute.get_server_interface(created.port_id, SERVER_A).port_state != "ACTIVE":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        got = conn.compute.get_server_interface(created.port_id, SERVER_A)
        assert got.mac_addr == created.mac_addr

        conn.compute.delete_server_interface(created.port_id, SERVER_A)
        conn.compute.delete_server_interface(PORT_FREE, SERVER_A)
        deadline = time.monotonic() + 5
        while list(conn.compute.server_interfaces(SERVER_A)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn.compute.get_server_interface(created.port_id, SERVER_A)
        with pytest.raises(openstack.exceptions.BadRequestException):
            conn.compute.create_server_interface(SERVER_A, net_id=NET, port_id=PORT_FREE)
    finally:
        conn.close()
    calls = sim.state()["calls"]
    assert calls["POST /v2.1/{project_id}/servers/{server_id}/os-interface"] >= 2
    if mode != "admin_token":
        assert calls["POST /v3/auth/tokens"] == 1
