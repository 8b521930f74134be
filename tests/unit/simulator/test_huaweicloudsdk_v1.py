"""Huawei's official SDKs, unchanged, against the simulator: the v1 NIC calls of ``huaweicloudsdkecs``
(batch_add_server_nics with security groups, a fixed IP and IPv6, show_job through INIT/RUNNING to SUCCESS or
FAIL, batch_delete_server_nics, list_server_interfaces with pci_address and driver_mode) and the Neutron port
update of ``huaweicloudsdkvpc`` (neutron_show_port / neutron_update_port), errors with the real codes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkecs.v2 import (
    BatchAddServerNicOption,
    BatchAddServerNicsRequest,
    BatchAddServerNicsRequestBody,
    BatchDeleteServerNicOption,
    BatchDeleteServerNicsRequest,
    BatchDeleteServerNicsRequestBody,
    EcsClient,
    Ipv6Bandwidth,
    ListServerInterfacesRequest,
    ServerNicSecurityGroup,
    ShowJobRequest,
)
from huaweicloudsdkvpc.v2 import (
    AllowedAddressPair,
    NeutronShowPortRequest,
    NeutronUpdatePortOption,
    NeutronUpdatePortRequest,
    NeutronUpdatePortRequestBody,
    VpcClient,
)

from ecs_nic_operator.simulator import Simulator, run_in_thread

from .conftest import AK, NET, PORT_FREE, PROJECT, SERVER_A, SERVER_B, SK, SUBNET, make_seed

SG_DEFAULT = "aaaaaaaa-0000-4000-8000-000000000001"
SG_WEB = "aaaaaaaa-0000-4000-8000-000000000002"
SUBNET6 = "bbbbbbbb-0000-4000-8000-000000000006"
BANDWIDTH = "cccccccc-0000-4000-8000-00000000000b"
GHOST = "99999999-9999-4999-8999-999999999999"


def v1_seed(**behaviour: Any) -> dict[str, Any]:
    seed = make_seed(dialect="huawei", jobTime=0.3, **behaviour)
    seed["networks"][0].update({"ipv6SubnetId": SUBNET6, "ipv6Cidr": "2001:db8:1::/64"})
    seed["securityGroups"] = [{"id": SG_DEFAULT, "name": "default"}, {"id": SG_WEB, "name": "web"}]
    return seed


@pytest.fixture
def served() -> Iterator[tuple[str, Simulator]]:
    url, stop = run_in_thread(v1_seed())
    try:
        yield url, stop.simulator
    finally:
        stop()


def config() -> HttpConfig:
    cfg = HttpConfig.get_default_config()
    cfg.timeout = (5, 10)
    cfg.retry_times = 0
    return cfg


def ecs(url: str) -> EcsClient:
    creds = BasicCredentials(AK, SK, PROJECT)
    return EcsClient.new_builder().with_http_config(config()).with_credentials(creds).with_endpoints([url]).build()


def vpc(url: str) -> VpcClient:
    creds = BasicCredentials(AK, SK, PROJECT)
    return VpcClient.new_builder().with_http_config(config()).with_credentials(creds).with_endpoints([url]).build()


def add(client: EcsClient, server: str, *options: BatchAddServerNicOption) -> str:
    body = BatchAddServerNicsRequestBody(nics=list(options))
    job_id: str = client.batch_add_server_nics(BatchAddServerNicsRequest(server_id=server, body=body)).job_id
    return job_id


def follow(client: EcsClient, job_id: str, within: float = 5.0) -> tuple[list[str], Any]:
    """Poll the job until it ends; returns the statuses seen (each once, in order) and the last answer."""
    seen: list[str] = []
    deadline = time.monotonic() + within
    while True:
        job = client.show_job(ShowJobRequest(job_id=job_id))
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if job.status in ("SUCCESS", "FAIL"):
            return seen, job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.02)


def test_add_follow_list_and_delete_through_the_sdk(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = ecs(url)
    job_id = add(
        client,
        SERVER_B,
        BatchAddServerNicOption(
            subnet_id=NET,
            ip_address="192.168.7.7",
            security_groups=[ServerNicSecurityGroup(id=SG_WEB)],
            ipv6_enable=True,
            ipv6_bandwidth=Ipv6Bandwidth(id=BANDWIDTH),
        ),
    )
    assert len(job_id) == 32
    # The NIC is not there while the job runs.
    listed = client.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_B))
    assert listed.interface_attachments == []
    seen, job = follow(client, job_id)
    assert seen[0] in ("INIT", "RUNNING") and seen[-1] == "SUCCESS", seen
    assert job.job_type == "batchAddNics" and job.begin_time and job.end_time
    assert job.entities.sub_jobs_total == 1
    sub = job.entities.sub_jobs[0]
    assert (sub.status, sub.job_type, sub.entities.server_id) == ("SUCCESS", "addNic", SERVER_B)
    nic_id = sub.entities.nic_id

    listed = client.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_B))
    [nic] = listed.interface_attachments
    assert nic.port_id == nic_id and nic.net_id == NET
    assert nic.driver_mode == "virtio" and nic.pci_address.startswith("0000:00:")
    assert nic.delete_on_termination is True
    ips = {(ip.subnet_id, ip.ip_address) for ip in nic.fixed_ips}
    assert (SUBNET, "192.168.7.7") in ips
    assert any(subnet == SUBNET6 and ":" in ip for subnet, ip in ips), ips
    assert listed.attachable_quantity.free_nic == 11

    port = vpc(url).neutron_show_port(NeutronShowPortRequest(port_id=nic_id)).port
    assert port.security_groups == [SG_WEB] and port.device_id == SERVER_B

    body = BatchDeleteServerNicsRequestBody(nics=[BatchDeleteServerNicOption(id=nic_id)])
    delete_id = client.batch_delete_server_nics(BatchDeleteServerNicsRequest(server_id=SERVER_B, body=body)).job_id
    # Still listed while the delete job runs, gone (port and all) once it ends.
    assert [
        n.port_id
        for n in client.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_B)).interface_attachments
    ] == [nic_id]
    seen, job = follow(client, delete_id)
    assert seen[-1] == "SUCCESS" and job.job_type == "batchDeleteNics"
    assert client.list_server_interfaces(ListServerInterfacesRequest(server_id=SERVER_B)).interface_attachments == []
    assert nic_id not in sim.world.ports  # v1 deletes the port, unlike the v2.1 detach
    assert sim.state()["jobs"] == {"batchAddNics": {"SUCCESS": 1}, "batchDeleteNics": {"SUCCESS": 1}}


def test_a_port_attached_by_id_keeps_its_groups_and_is_deleted_with_the_nic(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = ecs(url)
    job_id = add(
        client,
        SERVER_A,
        BatchAddServerNicOption(port_id=PORT_FREE, security_groups=[ServerNicSecurityGroup(id=SG_WEB)]),
    )
    _, job = follow(client, job_id)
    assert job.entities.sub_jobs[0].entities.nic_id == PORT_FREE
    assert vpc(url).neutron_show_port(NeutronShowPortRequest(port_id=PORT_FREE)).port.security_groups == [SG_DEFAULT]
    body = BatchDeleteServerNicsRequestBody(nics=[BatchDeleteServerNicOption(id=PORT_FREE)])
    follow(client, client.batch_delete_server_nics(BatchDeleteServerNicsRequest(server_id=SERVER_A, body=body)).job_id)
    assert PORT_FREE not in sim.world.ports


def test_jobs_that_fail_create_nothing_and_say_why(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = ecs(url)
    follow(client, add(client, SERVER_B, BatchAddServerNicOption(subnet_id=NET, ip_address="192.168.8.8")))
    # The address is taken by the time the second job runs: FAIL with the code v2.1 would answer at once.
    _, job = follow(client, add(client, SERVER_B, BatchAddServerNicOption(subnet_id=NET, ip_address="192.168.8.8")))
    assert (job.status, job.error_code) == ("FAIL", "Ecs.0010")
    sub = job.entities.sub_jobs[0]
    assert (sub.status, sub.error_code) == ("FAIL", "Ecs.0010") and sub.fail_reason
    assert sub.entities.nic_id is None

    for _ in range(2):  # SERVER_A takes 3 NICs
        follow(client, add(client, SERVER_A, BatchAddServerNicOption(subnet_id=NET)))
    follow(client, add(client, SERVER_A, BatchAddServerNicOption(subnet_id=NET)))
    _, job = follow(client, add(client, SERVER_A, BatchAddServerNicOption(subnet_id=NET)))
    assert (job.status, job.error_code) == ("FAIL", "Ecs.0050")

    sim.behaviour["jobFailRate"] = 1.0
    before = len(sim.world.servers[SERVER_B].ports)
    _, job = follow(client, add(client, SERVER_B, BatchAddServerNicOption(subnet_id=NET)))
    assert (job.status, job.error_code) == ("FAIL", "Ecs.1000")
    assert len(sim.world.servers[SERVER_B].ports) == before


def test_requests_refused_at_once_carry_the_real_codes(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = ecs(url)

    def refused(call: Any) -> tuple[int, str]:
        with pytest.raises(ClientRequestException) as info:
            call()
        return info.value.status_code, info.value.error_code

    def adding(server: str, **option: Any) -> Any:
        return lambda: add(client, server, BatchAddServerNicOption(**option))

    assert refused(adding(GHOST, subnet_id=NET)) == (404, "Ecs.0614")
    assert refused(adding(SERVER_A, subnet_id=GHOST)) == (400, "Ecs.0038")
    assert refused(adding(SERVER_A, subnet_id=NET, ip_address="10.9.9.9")) == (400, "Ecs.0039")
    assert refused(adding(SERVER_A, subnet_id=NET, security_groups=[ServerNicSecurityGroup(id=GHOST)])) == (
        400,
        "Ecs.0005",
    )
    sim.world.networks[NET].v6 = None
    assert refused(adding(SERVER_A, subnet_id=NET, ipv6_enable=True)) == (400, "Ecs.0005")
    sim.world.add_port(NET, port_id=GHOST, server_id=SERVER_B)
    assert refused(adding(SERVER_A, port_id=GHOST)) == (400, "Ecs.0919")
    sim.world.set_state(SERVER_A, "locked")
    assert refused(adding(SERVER_A, subnet_id=NET)) == (400, "Ecs.0605")
    sim.world.set_state(SERVER_A, "busy")
    assert refused(adding(SERVER_A, subnet_id=NET)) == (400, "Ecs.0100")
    body = BatchDeleteServerNicsRequestBody(nics=[BatchDeleteServerNicOption(id=PORT_FREE)])
    assert refused(
        lambda: client.batch_delete_server_nics(BatchDeleteServerNicsRequest(server_id=SERVER_B, body=body))
    ) == (400, "Ecs.0005")
    assert sim.state()["jobs"] == {}


def test_a_stuck_delete_job_ends_when_the_server_is_stopped(served: tuple[str, Simulator]) -> None:
    url, sim = served
    client = ecs(url)
    _, job = follow(client, add(client, SERVER_B, BatchAddServerNicOption(subnet_id=NET)))
    nic_id = job.entities.sub_jobs[0].entities.nic_id
    sim.behaviour["detachStuckRate"] = 1.0
    body = BatchDeleteServerNicsRequestBody(nics=[BatchDeleteServerNicOption(id=nic_id)])
    delete_id = client.batch_delete_server_nics(BatchDeleteServerNicsRequest(server_id=SERVER_B, body=body)).job_id
    time.sleep(0.5)  # longer than jobTime: a job that could end would have
    assert client.show_job(ShowJobRequest(job_id=delete_id)).status == "RUNNING"
    sim.world.set_state(SERVER_B, "stopped")
    seen, _ = follow(client, delete_id)
    assert seen[-1] == "SUCCESS" and nic_id not in sim.world.ports


def test_port_properties_through_the_vpc_sdk(served: tuple[str, Simulator]) -> None:
    url, sim = served
    network = vpc(url)
    pairs = [
        AllowedAddressPair(ip_address="1.1.1.1/0"),
        AllowedAddressPair(ip_address="10.0.0.100/32", mac_address="fa:16:3e:00:00:01"),
    ]
    option = NeutronUpdatePortOption(security_groups=[SG_WEB, SG_DEFAULT], allowed_address_pairs=pairs)
    port = network.neutron_update_port(
        NeutronUpdatePortRequest(port_id=PORT_FREE, body=NeutronUpdatePortRequestBody(port=option))
    ).port
    assert port.security_groups == [SG_WEB, SG_DEFAULT]
    assert [(p.ip_address, p.mac_address) for p in port.allowed_address_pairs] == [
        ("1.1.1.1/0", None),
        ("10.0.0.100/32", "fa:16:3e:00:00:01"),
    ]
    shown = network.neutron_show_port(NeutronShowPortRequest(port_id=PORT_FREE)).port
    assert (shown.id, shown.network_id, shown.port_security_enabled) == (PORT_FREE, NET, True)
    assert sim.state()["calls"]["PUT /v2.0/ports/{port_id}"] == 1

    def refused(option: NeutronUpdatePortOption, port_id: str = PORT_FREE) -> tuple[int, str]:
        with pytest.raises(ClientRequestException) as info:
            network.neutron_update_port(
                NeutronUpdatePortRequest(port_id=port_id, body=NeutronUpdatePortRequestBody(port=option))
            )
        return info.value.status_code, info.value.error_code

    assert refused(NeutronUpdatePortOption(security_groups=[GHOST]))[0] == 404
    assert refused(NeutronUpdatePortOption(security_groups=[SG_WEB]), port_id=GHOST)[0] == 404
    assert refused(NeutronUpdatePortOption(port_security_enabled=False))[0] == 409
    # A refused update changes nothing.
    assert network.neutron_show_port(NeutronShowPortRequest(port_id=PORT_FREE)).port.security_groups == [
        SG_WEB,
        SG_DEFAULT,
    ]
    disabled = NeutronUpdatePortOption(security_groups=[], allowed_address_pairs=[], port_security_enabled=False)
    port = network.neutron_update_port(
        NeutronUpdatePortRequest(port_id=PORT_FREE, body=NeutronUpdatePortRequestBody(port=disabled))
    ).port
    assert (port.security_groups, port.port_security_enabled) == ([], False)
