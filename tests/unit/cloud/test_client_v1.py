"""Our v1 calls (add_nic, show_job, delete_nics, list_v1) and the port client (show_port, update_port) against
our simulator over loopback HTTP, signed with AK/SK: shapes, job outcomes and the errors each maps to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from ecs_nic_operator.cloud import (
    ANY_SOURCE,
    AddressPair,
    AkSkAuth,
    BadRequest,
    EcsClient,
    InUse,
    Job,
    NetworkClient,
    NotFound,
    TokenBucket,
)
from ecs_nic_operator.simulator import Simulator
from tests.unit.simulator.conftest import AK, MISSING, NET, PORT_FREE, PROJECT, SERVER_A, SERVER_B, SK, SUBNET, running
from tests.unit.simulator.test_huaweicloudsdk_v1 import BANDWIDTH, SG_DEFAULT, SG_WEB, SUBNET6, v1_seed


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running(v1_seed()) as simulator:
        yield simulator


async def until_done(ecs: EcsClient, job_id: str, within: float = 5.0) -> Job:
    deadline = time.monotonic() + within
    while not (job := await ecs.show_job(job_id)).done:
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.02)
    return job


async def test_add_follow_list_update_delete(sim: Simulator) -> None:
    assert sim.url is not None
    auth = AkSkAuth(AK, SK, PROJECT)
    limiter = TokenBucket(100, 100)
    async with (
        EcsClient(sim.url, PROJECT, auth, limiter=limiter) as ecs,
        NetworkClient(sim.url, auth, limiter=limiter) as net,
    ):
        job_id = await ecs.add_nic(
            SERVER_B, net_id=NET, fixed_ip="192.168.5.5", security_groups=[SG_WEB], ipv6=True, ipv6_bandwidth=BANDWIDTH
        )
        first = await ecs.show_job(job_id)
        assert first.status in ("INIT", "RUNNING") and not first.done and first.nic_ids == ()
        job = await until_done(ecs, job_id)
        assert job.succeeded and len(job.nic_ids) == 1 and job.job_type == "batchAddNics"
        [nic] = await ecs.list_v1(SERVER_B)
        assert nic.port_id == job.nic_ids[0]
        assert nic.driver_mode == "virtio" and nic.pci_address.startswith("0000:00:")
        assert {ip.subnet_id for ip in nic.fixed_ips} == {SUBNET, SUBNET6}
        # The v2.1 list knows nothing of the guest's view.
        [same] = await ecs.list(SERVER_B)
        assert same.port_id == nic.port_id and same.pci_address == ""

        port = await net.show_port(nic.port_id)
        assert port.security_groups == (SG_WEB,) and port.device_id == SERVER_B and port.port_security_enabled
        pairs = (AddressPair(ANY_SOURCE), AddressPair("10.0.0.100/32", "FA:16:3E:00:00:09"))
        updated = await net.update_port(nic.port_id, security_groups=[SG_DEFAULT, SG_WEB], allowed_address_pairs=pairs)
        assert updated.security_groups == (SG_DEFAULT, SG_WEB)
        assert updated.allowed_address_pairs == (
            AddressPair(ANY_SOURCE),
            AddressPair("10.0.0.100/32", "fa:16:3e:00:00:09"),
        )

        deleted = await until_done(ecs, await ecs.delete_nics(SERVER_B, [nic.port_id]))
        assert deleted.succeeded and await ecs.list_v1(SERVER_B) == []
        with pytest.raises(NotFound) as gone:
            await net.show_port(nic.port_id)
        assert gone.value.what == "port"
    calls = sim.state()["calls"]
    assert calls["POST /v1/{project_id}/cloudservers/{server_id}/nics"] == 1
    assert calls["PUT /v2.0/ports/{port_id}"] == 1


async def test_failed_jobs_and_refusals_map_to_their_errors(sim: Simulator) -> None:
    assert sim.url is not None
    auth = AkSkAuth(AK, SK, PROJECT)
    async with EcsClient(sim.url, PROJECT, auth) as ecs, NetworkClient(sim.url, auth) as net:
        await until_done(ecs, await ecs.add_nic(SERVER_A, net_id=NET, fixed_ip="192.168.6.6"))
        failed = await until_done(ecs, await ecs.add_nic(SERVER_A, net_id=NET, fixed_ip="192.168.6.6"))
        assert (failed.status, failed.error_code, failed.nic_ids) == ("FAIL", "Ecs.0010", ())
        assert "192.168.6.6" in failed.fail_reason
        with pytest.raises(NotFound) as info:
            await ecs.add_nic(MISSING, net_id=NET)
        assert (info.value.what, info.value.code) == ("server", "Ecs.0614")
        with pytest.raises(NotFound) as info:
            await ecs.add_nic(SERVER_A, net_id=MISSING)
        assert info.value.what == "network"
        sim.world.add_port(NET, port_id=MISSING, server_id=SERVER_B)
        with pytest.raises(InUse):
            await ecs.add_nic(SERVER_A, port_id=MISSING)
        with pytest.raises(BadRequest):
            await ecs.add_nic(SERVER_A, net_id=NET, security_groups=[MISSING])
        with pytest.raises(NotFound) as info:
            await ecs.show_job("0" * 32)
        assert info.value.what == "job"
        with pytest.raises(NotFound) as info:
            await net.update_port(PORT_FREE, security_groups=[MISSING])
        assert (info.value.what, info.value.code) == ("securityGroup", "SecurityGroupNotFound")
        with pytest.raises(BadRequest):  # Neutron's 409: port security off while groups remain
            await net.update_port(PORT_FREE, port_security_enabled=False)
        with pytest.raises(ValueError):
            await net.update_port(PORT_FREE)


async def test_the_nova_dialect_has_no_v1_api(sim: Simulator) -> None:
    assert sim.url is not None
    sim.behaviour["dialect"] = "nova"
    async with EcsClient(sim.url, PROJECT, AkSkAuth(AK, SK, PROJECT)) as ecs:
        with pytest.raises(NotFound) as info:
            await ecs.add_nic(SERVER_A, net_id=NET)
        assert info.value.code is None  # a bare 404, not an answer about the server
