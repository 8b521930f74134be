"""Exactly once: the operator is SIGKILLed after the cloud accepted a POST and before status was written."""

from __future__ import annotations

import uuid

import pytest

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A
from tests.integration.kube import Kube, condition, wait_for


@pytest.mark.parametrize("fixed_ip", [None, "10.30.9.9"], ids=["netId", "netId+fixedIp"])
def test_kill_between_attach_and_status_write_leaves_exactly_one_nic(
    kube: Kube,
    simulator: SimulatorProcess,
    own_operator: OperatorProcess,
    namespace: str,
    server: str,
    fixed_ip: str | None,
) -> None:
    # A second NIC on the same network, attached before and not ours: adoption must not take it.
    simulator.add_server(other := str(uuid.uuid4()))
    simulator.behaviour(replyDelay=3.0)
    own_operator.start()
    spec: dict[str, object] = {"serverId": server, "netId": NET_A}
    if fixed_ip:
        spec["fixedIps"] = [{"ipAddress": fixed_ip}]
    kube.create_attachment(namespace, "crash", spec)

    # The cloud has the NIC; the operator is still waiting for the answer, so nothing is in status yet.
    wait_for(lambda: simulator.ports_of(server), timeout=30, what="the POST to reach the cloud")
    own_operator.kill()
    obj = kube.get_attachment(namespace, "crash")
    assert "portId" not in obj.get("status", {})
    assert "ecsnic.io/attach-intent" in obj["metadata"]["annotations"]

    simulator.behaviour(replyDelay=0)
    own_operator.start()
    obj = wait_for(
        lambda: (
            (o := kube.get_attachment(namespace, "crash"))
            and (c := condition(o, "Ready"))
            and c["status"] == "True"
            and o
        ),
        timeout=30,
        what="Ready after restart",
    )
    nics = simulator.ports_of(server)
    assert len(nics) == 1, nics
    assert obj["status"]["portId"] == nics[0]["port_id"]
    assert simulator.ports_of(other) == []
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=crash").items
    assert "Adopted" in {e.reason for e in events}


def test_kill_with_another_nic_on_the_same_network_adopts_only_the_new_one(
    kube: Kube, simulator: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    own_operator.start()
    # Someone else's NIC on the same network and server, attached before our intent was recorded.
    kube.create_attachment(namespace, "first", {"serverId": server, "netId": NET_A, "deletionPolicy": "Orphan"})
    first = wait_for(
        lambda: (o := kube.get_attachment(namespace, "first")).get("status", {}).get("portState") == "ACTIVE" and o,
        timeout=30,
        what="first NIC ACTIVE",
    )
    kube.delete_attachment(namespace, "first")  # Orphan: the NIC stays, unowned
    wait_for(lambda: not kube.attachment_exists(namespace, "first"), timeout=30, what="first deleted")

    simulator.behaviour(replyDelay=3.0)
    kube.create_attachment(namespace, "second", {"serverId": server, "netId": NET_A})
    wait_for(lambda: len(simulator.ports_of(server)) == 2, timeout=30, what="the second POST to reach the cloud")
    own_operator.kill()
    simulator.behaviour(replyDelay=0)
    own_operator.start()
    obj = wait_for(
        lambda: (
            (o := kube.get_attachment(namespace, "second"))
            and (c := condition(o, "Ready"))
            and c["status"] == "True"
            and o
        ),
        timeout=30,
        what="second Ready",
    )
    ports = {n["port_id"] for n in simulator.ports_of(server)}
    assert len(ports) == 2
    assert obj["status"]["portId"] in ports
    assert obj["status"]["portId"] != first["status"]["portId"]


def test_resource_gone_while_its_attach_is_answered_leaves_no_nic(
    kube: Kube, simulator: SimulatorProcess, operator: OperatorProcess, namespace: str, server: str
) -> None:
    """The API server can delete an object even though our finalizer was added just before (a DELETE that
    read it without finalizers), and a user can strip the finalizer by hand: either way the resource is gone
    while the cloud is still answering its POST. The NIC must not stay behind with no resource to own it."""
    simulator.behaviour(replyDelay=3.0)
    try:
        kube.create_attachment(namespace, "vanishing", {"serverId": server, "netId": NET_A})
        wait_for(lambda: simulator.ports_of(server), timeout=30, what="the POST to reach the cloud")
        kube.patch_attachment(namespace, "vanishing", {"metadata": {"finalizers": None}})
        kube.delete_attachment(namespace, "vanishing")
        wait_for(lambda: not kube.list_attachments(namespace), timeout=30, what="the resource gone")
        wait_for(lambda: simulator.ports_of(server) == [], timeout=30, what="the orphaned NIC detached again")
    finally:
        simulator.behaviour(replyDelay=0)
