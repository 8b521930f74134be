"""Ownership on the real stack: an attachment only ever adopts, or detaches, a NIC it can prove is its own.

Each test builds the situation a namespace user (or a crash) can create and checks what a user would:
the server's NICs in the simulator, the attachment's conditions, and which NICs are left after a delete.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A, NET_B, instead_of
from tests.integration.kube import Kube, condition, wait_for

INTENT = "ecsnic.io/attach-intent"


def ready(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    obj = kube.get_attachment(namespace, name)
    cond = condition(obj, "Ready")
    return obj if cond and cond["status"] == "True" else None


def reason_is(kube: Kube, namespace: str, name: str, reason: str) -> dict[str, Any] | None:
    obj = kube.get_attachment(namespace, name)
    cond = condition(obj, "Synced")
    return obj if cond and cond.get("reason") == reason else None


def foreign_nic(kube: Kube, namespace: str, server: str, net: str = NET_A) -> str:
    """A NIC on the server that no attachment owns (attached, then left behind with deletionPolicy Orphan)."""
    name = f"foreign-{uuid.uuid4().hex[:6]}"
    kube.create_attachment(namespace, name, {"serverId": server, "netId": net, "deletionPolicy": "Orphan"})
    port = wait_for(lambda: (o := ready(kube, namespace, name)) and o["status"]["portId"], timeout=30, what="foreign")
    kube.delete_attachment(namespace, name)
    wait_for(lambda: not kube.attachment_exists(namespace, name), timeout=30, what="foreign resource deleted")
    return str(port)


@pytest.fixture
def other_namespace(kube: Kube) -> Iterator[str]:
    name = f"t-other-{uuid.uuid4().hex[:6]}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(client.ApiException):
        kube.core.delete_namespace(name)


def test_a_port_owned_in_another_namespace_is_claimed_never_adopted_nor_detached(
    kube: Kube,
    operator: OperatorProcess,
    simulator: SimulatorProcess,
    namespace: str,
    other_namespace: str,
    server: str,
) -> None:
    port = simulator.add_port(NET_B)["port_id"]
    kube.create_attachment(namespace, "owner", {"serverId": server, "portId": port})
    wait_for(lambda: ready(kube, namespace, "owner"), timeout=30, what="owner Ready")

    kube.create_attachment(other_namespace, "thief", {"serverId": server, "portId": port})
    thief = wait_for(lambda: reason_is(kube, other_namespace, "thief", "PortClaimed"), timeout=30, what="PortClaimed")
    assert condition(thief, "Ready")["status"] == "False"  # type: ignore[index]
    assert f"{namespace}/owner" in condition(thief, "Synced")["message"]  # type: ignore[index]
    assert "portId" not in thief.get("status", {})

    kube.delete_attachment(other_namespace, "thief")
    wait_for(lambda: not kube.attachment_exists(other_namespace, "thief"), timeout=30, what="thief deleted")
    assert [n["port_id"] for n in simulator.ports_of(server)] == [port]
    owner = ready(kube, namespace, "owner")
    assert owner is not None and owner["status"]["portId"] == port


def _copied_intent(kube: Kube, namespace: str, server: str) -> str:
    """A real, operator-signed intent, taken from another attachment (which a namespace user can read)."""
    kube.create_attachment(namespace, "donor", {"serverId": server, "netId": NET_B})
    donor = wait_for(lambda: ready(kube, namespace, "donor"), timeout=30, what="donor Ready")
    return str(donor["metadata"]["annotations"][INTENT])


@pytest.mark.parametrize("forgery", ["garbled", "hand-written", "copied"])
def test_an_intent_the_operator_did_not_write_adopts_nothing_and_calls_nothing(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str, forgery: str
) -> None:
    foreign = foreign_nic(kube, namespace, server)
    intent = {
        "garbled": "{not json",
        "hand-written": json.dumps({"startedAt": "2026-01-01T00:00:00Z", "knownPorts": [], "server": server}),
        "copied": "",
    }[forgery] or _copied_intent(kube, namespace, server)
    before = {n["port_id"] for n in simulator.ports_of(server)}
    calls = simulator.calls_on(server)

    kube.create_attachment(namespace, "forged", {"serverId": server, "netId": NET_A}, annotations={INTENT: intent})
    obj = wait_for(lambda: reason_is(kube, namespace, "forged", "IntentUnverifiable"), timeout=30, what="blocked")
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert "portId" not in obj.get("status", {})
    assert simulator.calls_on(server) == calls  # no cloud call for a resource whose evidence is not ours
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=forged").items
    assert "IntentUnverifiable" in {e.reason for e in events}

    kube.delete_attachment(namespace, "forged")
    wait_for(lambda: not kube.attachment_exists(namespace, "forged"), timeout=30, what="forged deleted")
    assert {n["port_id"] for n in simulator.ports_of(server)} == before
    assert foreign in before


def test_a_lost_answer_on_a_node_that_is_then_removed_still_detaches_on_delete(
    kube: Kube, simulator: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    """The intent records the server it resolved: with the Node gone, the delete still finds and detaches the
    NIC (adopted from the lost answer) instead of waiting for a Node that will not come back."""
    node = f"worker-{uuid.uuid4().hex[:8]}"
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {"providerID": f"x:///{server}"}}
        ),
    )
    simulator.behaviour(replyDelay=3.0)
    own_operator.start()
    kube.create_attachment(namespace, "bynode", {"nodeName": node, "netId": NET_A})
    wait_for(lambda: simulator.ports_of(server), timeout=30, what="the POST to reach the cloud")
    own_operator.kill()
    assert "portId" not in kube.get_attachment(namespace, "bynode").get("status", {})
    kube.core.delete_node(node)
    simulator.behaviour(replyDelay=0)

    kube.delete_attachment(namespace, "bynode")
    own_operator.start()
    wait_for(lambda: not kube.attachment_exists(namespace, "bynode"), timeout=40, what="finalizer released")
    assert simulator.ports_of(server) == []


def _block_intent_writes(kube: Kube, label: str) -> None:
    """A ValidatingAdmissionPolicy refusing any change of the attach intent on labelled attachments: the
    metadata write of a drift repair fails while status writes (another subresource) still go through."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": label},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["ecsnic.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["ecsnicattachments"],
                    }
                ]
            },
            "matchConditions": [{"name": "labelled", "expression": f"'{label}' in object.metadata.labels"}],
            "validations": [
                {
                    "expression": f"object.metadata.annotations['{INTENT}'] == "
                    f"oldObject.metadata.annotations['{INTENT}']",
                    "message": "intent writes blocked by the test",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": label},
        "spec": {"policyName": label, "validationActions": ["Deny"]},
    }
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([policy, binding]))


def test_a_drift_repair_whose_intent_write_fails_never_adopts_against_the_old_baseline(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "drift", {"serverId": server, "netId": NET_A})
    first = wait_for(lambda: ready(kube, namespace, "drift"), timeout=30, what="Ready")
    ours = first["status"]["portId"]
    # A NIC on the same network, attached after ours by someone else: the first intent's baseline lacks it.
    foreign = foreign_nic(kube, namespace, server)
    label = f"block-intent-{uuid.uuid4().hex[:6]}"
    _block_intent_writes(kube, label)
    try:
        kube.patch_attachment(namespace, "drift", {"metadata": {"labels": {label: "yes"}}})

        # The policy is enforced once the API server has loaded it: probe with a write it must refuse.
        def refused() -> bool:
            try:
                kube.patch_attachment(namespace, "drift", {"metadata": {"annotations": {INTENT: "probe"}}})
            except client.ApiException as exc:
                return exc.status in (403, 422)
            kube.patch_attachment(
                namespace, "drift", {"metadata": {"annotations": {INTENT: first["metadata"]["annotations"][INTENT]}}}
            )
            return False

        wait_for(refused, timeout=30, what="the admission policy in force")
        simulator.force_detach(server, ours)
        # Several resync periods (4 s) pass with the repair's intent refused.
        with contextlib.suppress(AssertionError, TimeoutError):
            wait_for(
                lambda: (o := kube.get_attachment(namespace, "drift")).get("status", {}).get("portId") == foreign and o,
                timeout=15,
            )
        obj = kube.get_attachment(namespace, "drift")
        assert obj.get("status", {}).get("portId") != foreign, "adopted someone else's NIC"
        assert [n["port_id"] for n in simulator.ports_of(server)] == [foreign]
    finally:
        kube.kubectl(
            "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", label, "--ignore-not-found"
        )
    again = wait_for(
        lambda: (o := ready(kube, namespace, "drift")) and o["status"]["portId"] not in (ours, foreign) and o,
        timeout=40,
        what="repaired with a NIC of its own",
    )
    assert {n["port_id"] for n in simulator.ports_of(server)} == {foreign, again["status"]["portId"]}


@pytest.fixture
def quick_retry_operator(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> Iterator[OperatorProcess]:
    """An operator retrying errors a person must fix every 2 s, so a failing attach records intent after intent."""
    own = OperatorProcess(kube.control_plane.kubeconfig, tmp_path / "operator.log", args=["--spec-retry", "2"])
    with instead_of(operator, own):
        yield own


def test_an_earlier_intent_of_the_same_object_copied_back_adopts_nothing(
    kube: Kube,
    simulator: SimulatorProcess,
    quick_retry_operator: OperatorProcess,
    namespace: str,
    other_namespace: str,
    server: str,
) -> None:
    """A network with no address left: every attach of "a" fails, and each retry records a new, signed intent.
    Port F (that network's last address) is attached meanwhile by another attachment, so a later intent of "a"
    knows it; then that attachment is deleted with Orphan, leaving F attached and unclaimed. The first intent
    of "a" (signed, same object) did not know F: copied back by a namespace user, it would make F look like
    the NIC a lost POST of "a" made, and deleting "a" would detach it."""
    net = str(uuid.uuid4())
    simulator.add_network(net, str(uuid.uuid4()), "10.99.0.0/30")  # one host address: 10.99.0.2
    port = simulator.add_port(net)["port_id"]

    def intent_of(name: str) -> dict[str, Any]:
        raw = kube.get_attachment(namespace, name)["metadata"].get("annotations", {}).get(INTENT)
        return json.loads(raw) if raw else {}

    kube.create_attachment(namespace, "a", {"serverId": server, "netId": net})
    first = wait_for(lambda: kube.get_attachment(namespace, "a")["metadata"].get("annotations", {}).get(INTENT))
    assert port not in json.loads(first)["knownPorts"]
    kube.create_attachment(other_namespace, "x", {"serverId": server, "portId": port, "deletionPolicy": "Orphan"})
    wait_for(lambda: ready(kube, other_namespace, "x"), timeout=30, what="x Ready on the port")
    wait_for(lambda: port in (intent_of("a").get("knownPorts") or []), timeout=30, what="a later intent knows it")
    kube.delete_attachment(other_namespace, "x")
    wait_for(lambda: not kube.attachment_exists(other_namespace, "x"), timeout=30, what="x deleted (Orphan)")
    assert port in {n["port_id"] for n in simulator.ports_of(server)}

    kube.patch_attachment(namespace, "a", {"metadata": {"annotations": {INTENT: first}}})
    obj = wait_for(lambda: reason_is(kube, namespace, "a", "IntentUnverifiable"), timeout=30, what="blocked")
    assert "earlier intent" in condition(obj, "Synced")["message"]  # type: ignore[index]
    assert "portId" not in obj.get("status", {})
    kube.delete_attachment(namespace, "a")
    wait_for(lambda: not kube.attachment_exists(namespace, "a"), timeout=30, what="a deleted")
    assert port in {n["port_id"] for n in simulator.ports_of(server)}  # never detached: it was never a's


def test_after_an_upgrade_an_unsigned_intent_goes_on_only_where_status_corroborates_it(
    kube: Kube, simulator: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    """What the release without signed intents leaves behind when an attach answer was lost: the finalizer,
    its unsigned intent, and the status it wrote. The new operator adopts the port a portId spec names (its
    baseline is never read); a plain-network one, whose baseline nothing can confirm, is IntentUnverifiable."""
    legacy = json.dumps({"startedAt": "2026-11-30T10:00:00Z", "knownPorts": None})
    lost = simulator.add_port(NET_B, serverId=server)["port_id"]  # the lost answer's NIC
    foreign = simulator.add_port(NET_A, serverId=server)["port_id"]  # attached by another tool since
    status = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Synced",
                "status": "False",
                "reason": "CloudUnavailable",
                "message": "attach: timed out",
                "lastTransitionTime": "2026-11-30T10:00:05Z",
                "observedGeneration": 1,
            }
        ],
    }
    for name, spec in (
        ("byport", {"serverId": server, "portId": lost}),
        ("bynet", {"serverId": server, "netId": NET_A}),
    ):
        kube.create_attachment(namespace, name, spec, annotations={INTENT: legacy}, finalizers=["ecsnic.io/finalizer"])
        kube.custom.patch_namespaced_custom_object_status(
            "ecsnic.io", "v1alpha1", namespace, "ecsnicattachments", name, {"status": status}
        )
    own_operator.start()

    byport = wait_for(lambda: ready(kube, namespace, "byport"), timeout=40, what="byport adopted")
    assert byport["status"]["portId"] == lost
    bynet = wait_for(lambda: reason_is(kube, namespace, "bynet", "IntentUnverifiable"), timeout=40, what="blocked")
    assert "previous release" in condition(bynet, "Synced")["message"]  # type: ignore[index]
    assert {n["port_id"] for n in simulator.ports_of(server)} == {lost, foreign}  # adopted; none attached anew

    for name in ("byport", "bynet"):
        kube.delete_attachment(namespace, name)
        wait_for(lambda n=name: not kube.attachment_exists(namespace, n), timeout=40, what=f"{name} deleted")
    assert {n["port_id"] for n in simulator.ports_of(server)} == {foreign}


@pytest.mark.parametrize("deleted_first", [False, True], ids=["attaching", "deleted-while-unanswered"])
def test_a_lost_answer_beside_a_nic_another_tool_attached_meanwhile_adopts_and_detaches_neither(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str, deleted_first: bool
) -> None:
    # Our POST lands and its answer is lost; while it is on its way another tool attaches a NIC on the same
    # network. Two ports are new since the intent: which is ours cannot be told, so neither is taken.
    simulator.behaviour(replyDelay=4.0, lostReplyRate=1)
    try:
        kube.create_attachment(namespace, "twin", {"serverId": server, "netId": NET_A})
        ours = wait_for(lambda: simulator.ports_of(server), timeout=30, what="the POST to reach the cloud")[0][
            "port_id"
        ]
        simulator.add_port(NET_A, serverId=server)
        if deleted_first:
            kube.delete_attachment(namespace, "twin")
        both = {n["port_id"] for n in simulator.ports_of(server)}
        assert len(both) == 2 and ours in both
        obj = wait_for(
            lambda: reason_is(kube, namespace, "twin", "AdoptionAmbiguous"), timeout=30, what="AdoptionAmbiguous"
        )
    finally:
        simulator.behaviour(replyDelay=0, lostReplyRate=0)
    message = condition(obj, "Synced")["message"]  # type: ignore[index]
    assert all(p in message for p in both), message
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert "portId" not in obj.get("status", {})
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=twin").items
    assert "AdoptionAmbiguous" in {e.reason for e in events}

    if not deleted_first:
        kube.delete_attachment(namespace, "twin")
    # The deletion is held (a detach would be a guess) until the user lets the resource go with Orphan.
    assert kube.attachment_exists(namespace, "twin")
    kube.patch_attachment(namespace, "twin", {"spec": {"deletionPolicy": "Orphan"}})
    wait_for(lambda: not kube.attachment_exists(namespace, "twin"), timeout=30, what="twin deleted with Orphan")
    assert {n["port_id"] for n in simulator.ports_of(server)} == both  # neither NIC was detached
