"""The EcsNicAttachment lifecycle through the real kube-apiserver, the operator process and the simulator."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A, NET_B, SUBNET_A
from tests.integration.kube import Kube, condition, wait_for


def ready(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    obj = kube.get_attachment(namespace, name)
    cond = condition(obj, "Ready")
    return obj if cond and cond["status"] == "True" else None


def with_reason(kube: Kube, namespace: str, name: str, type_: str, reason: str) -> dict[str, Any] | None:
    obj = kube.get_attachment(namespace, name)
    cond = condition(obj, type_)
    return obj if cond and cond.get("reason") == reason else None


def assert_status_matches_cloud(obj: dict[str, Any], nic: dict[str, Any], server: str) -> None:
    status = obj["status"]
    assert status["serverId"] == server
    assert status["portId"] == nic["port_id"]
    assert status["netId"] == nic["net_id"]
    assert status["portState"] == "ACTIVE" == nic["port_state"]
    assert status["macAddr"] == nic["mac_addr"]
    assert status["fixedIps"] == [{"subnetId": i["subnet_id"], "ipAddress": i["ip_address"]} for i in nic["fixed_ips"]]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert condition(obj, "Synced")["status"] == "True"  # type: ignore[index]


def events_for(kube: Kube, namespace: str, name: str) -> list[tuple[str, str, str]]:
    events = kube.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in events]


def test_attach_by_net_id_fills_status_and_printer_columns(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "nic", {"serverId": server, "netId": NET_A})
    obj = wait_for(lambda: ready(kube, namespace, "nic"), timeout=30, what="Ready")
    nics = simulator.ports_of(server)
    assert len(nics) == 1
    assert_status_matches_cloud(obj, nics[0], server)
    assert "ecsnic.io/finalizer" in obj["metadata"]["finalizers"]

    table = kube.kubectl("get", "ecsnic", "-n", namespace, "nic").stdout.splitlines()
    assert table[0].split() == ["NAME", "SERVER", "PORT", "STATE", "MAC", "IP", "READY", "SYNCED", "AGE"]
    row = table[1].split()
    assert row[1:8] == [
        server,
        nics[0]["port_id"],
        "ACTIVE",
        nics[0]["mac_addr"],
        nics[0]["fixed_ips"][0]["ip_address"],
        "True",
        "True",
    ]
    reasons = [reason for _, reason, _ in events_for(kube, namespace, "nic")]
    assert "Attached" in reasons and "Active" in reasons


def test_attach_with_fixed_ip(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(
        namespace, "fixed", {"serverId": server, "netId": NET_A, "fixedIps": [{"ipAddress": "10.30.7.7"}]}
    )
    obj = wait_for(lambda: ready(kube, namespace, "fixed"), timeout=30, what="Ready")
    nics = simulator.ports_of(server)
    assert len(nics) == 1
    assert nics[0]["fixed_ips"] == [{"subnet_id": SUBNET_A, "ip_address": "10.30.7.7"}]
    assert_status_matches_cloud(obj, nics[0], server)


def test_attach_existing_port_by_port_id(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    port = simulator.add_port(NET_B)
    kube.create_attachment(namespace, "byport", {"serverId": server, "portId": port["port_id"]})
    obj = wait_for(lambda: ready(kube, namespace, "byport"), timeout=30, what="Ready")
    nics = simulator.ports_of(server)
    assert [n["port_id"] for n in nics] == [port["port_id"]]
    assert_status_matches_cloud(obj, nics[0], server)


def test_attach_by_node_name(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    node = f"worker-{uuid.uuid4().hex[:8]}"
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node},
                "spec": {"providerID": f"huaweicloud://az1/{server}"},
            }
        ),
    )
    kube.create_attachment(namespace, "bynode", {"nodeName": node, "netId": NET_B})
    obj = wait_for(lambda: ready(kube, namespace, "bynode"), timeout=30, what="Ready")
    nics = simulator.ports_of(server)
    assert len(nics) == 1
    assert_status_matches_cloud(obj, nics[0], server)


def test_delete_policy_delete_detaches_and_orphan_leaves_the_nic(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "gone", {"serverId": server, "netId": NET_A})
    kube.create_attachment(namespace, "kept", {"serverId": server, "netId": NET_B, "deletionPolicy": "Orphan"})
    wait_for(lambda: ready(kube, namespace, "gone") and ready(kube, namespace, "kept"), timeout=30, what="both Ready")
    kept_port = kube.get_attachment(namespace, "kept")["status"]["portId"]
    assert len(simulator.ports_of(server)) == 2

    kube.delete_attachment(namespace, "gone")
    kube.delete_attachment(namespace, "kept")
    wait_for(
        lambda: not kube.attachment_exists(namespace, "gone") and not kube.attachment_exists(namespace, "kept"),
        timeout=30,
        what="both resources deleted",
    )
    assert [n["port_id"] for n in simulator.ports_of(server)] == [kept_port]


def test_changing_deletion_policy_to_orphan_is_honoured(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "nic", {"serverId": server, "netId": NET_A})
    obj = wait_for(lambda: ready(kube, namespace, "nic"), timeout=30, what="Ready")
    kube.patch_attachment(namespace, "nic", {"spec": {"deletionPolicy": "Orphan"}})
    kube.delete_attachment(namespace, "nic")
    wait_for(lambda: not kube.attachment_exists(namespace, "nic"), timeout=30, what="deleted")
    assert [n["port_id"] for n in simulator.ports_of(server)] == [obj["status"]["portId"]]


def test_nic_detached_out_of_band_is_reattached_with_an_event(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "drift", {"serverId": server, "netId": NET_A})
    first = wait_for(lambda: ready(kube, namespace, "drift"), timeout=30, what="Ready")
    simulator.force_detach(server, first["status"]["portId"])
    assert simulator.ports_of(server) == []

    # The operator resyncs every 4 s in these tests (--resync-period 4).
    again = wait_for(
        lambda: (o := ready(kube, namespace, "drift")) and o["status"]["portId"] != first["status"]["portId"] and o,
        timeout=30,
        what="re-attached and Ready",
    )
    nics = simulator.ports_of(server)
    assert len(nics) == 1
    assert_status_matches_cloud(again, nics[0], server)
    reasons = [reason for _, reason, _ in events_for(kube, namespace, "drift")]
    assert "NicDetachedOutOfBand" in reasons and "DriftRepaired" in reasons


def test_paused_resource_makes_no_cloud_calls(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(
        namespace, "paused", {"serverId": server, "netId": NET_A}, annotations={"ecsnic.io/paused": "true"}
    )
    wait_for(lambda: with_reason(kube, namespace, "paused", "Synced", "ReconcilePaused"), timeout=30, what="paused")
    # Nothing for this server ever reached the cloud, counted per server by the simulator.
    assert simulator.calls_on(server) == 0
    assert simulator.ports_of(server) == []
    kube.patch_attachment(namespace, "paused", {"metadata": {"annotations": {"ecsnic.io/paused": None}}})
    obj = wait_for(lambda: ready(kube, namespace, "paused"), timeout=30, what="Ready after unpause")
    assert len(simulator.ports_of(server)) == 1
    assert obj["status"]["portId"]
    assert simulator.calls_on(server) > 0  # the per-server counter does count this server's calls

    # Paused again and deleted: no detach call either. The resource waits, saying why and how to go on.
    kube.patch_attachment(namespace, "paused", {"metadata": {"annotations": {"ecsnic.io/paused": "true"}}})
    wait_for(lambda: with_reason(kube, namespace, "paused", "Synced", "ReconcilePaused"), timeout=30, what="paused")
    calls = simulator.calls_on(server)
    kube.delete_attachment(namespace, "paused")
    waiting = wait_for(
        lambda: with_reason(kube, namespace, "paused", "Ready", "ReconcilePaused"), timeout=30, what="deletion waits"
    )
    assert "Remove the annotation" in condition(waiting, "Ready")["message"]  # type: ignore[index]
    assert len(simulator.ports_of(server)) == 1
    assert simulator.calls_on(server) == calls  # no detach, no list: paused means no cloud call
    kube.patch_attachment(namespace, "paused", {"metadata": {"annotations": {"ecsnic.io/paused": None}}})
    wait_for(lambda: not kube.list_attachments(namespace), timeout=30, what="deleted once unpaused")
    assert simulator.ports_of(server) == []


def test_unknown_network_ends_in_condition_with_bounded_calls(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    missing = str(uuid.uuid4())
    before = simulator.calls("POST")
    kube.create_attachment(namespace, "badnet", {"serverId": server, "netId": missing})
    obj = wait_for(
        lambda: with_reason(kube, namespace, "badnet", "Ready", "NetworkNotFound"), timeout=30, what="NetworkNotFound"
    )
    assert missing in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert condition(obj, "Synced")["status"] == "False"  # type: ignore[index]
    assert simulator.ports_of(server) == []
    # Spec errors retry slowly (minutes): one POST, not a loop.
    assert simulator.calls("POST") - before <= 2


def test_missing_cloud_is_reported(kube: Kube, operator: OperatorProcess, namespace: str, server: str) -> None:
    kube.create_attachment(namespace, "nocloud", {"serverId": server, "netId": NET_A, "cloudRef": {"name": "nowhere"}})
    obj = wait_for(
        lambda: with_reason(kube, namespace, "nocloud", "Ready", "CloudNotFound"), timeout=30, what="CloudNotFound"
    )
    assert "nowhere" in condition(obj, "Ready")["message"]  # type: ignore[index]
    # Never attached, so deleting needs no cloud and leaves no finalizer behind.
    kube.delete_attachment(namespace, "nocloud")
    wait_for(lambda: not kube.attachment_exists(namespace, "nocloud"), timeout=30, what="deleted")
