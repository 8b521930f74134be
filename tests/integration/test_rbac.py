"""RBAC proven minimal: the operator runs a full cycle with only deploy/manifests/rbac.yaml, and with any one
verb of any one rule removed, the cycle breaks.

A control plane of its own (not the session one): the session's admin-identity operator would otherwise
reconcile these objects too and hide what this identity cannot do. The cycle exercises every permission:
the EcsCloud has a namespaceSelector (namespaces get), the attachment names a Node (nodes get), its Secret
lives in ecs-nic-system (the Role), and the operator serves /readyz (health probe LISTs).
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ecs_nic_operator.devenv.controlplane import free_port, repo_root
from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A, apply_cloud
from tests.integration.identity import SYSTEM_NS, can_i, own_control_plane, service_account_kubeconfig
from tests.integration.kube import Kube, condition

RBAC = repo_root() / "deploy" / "manifests" / "rbac.yaml"
# A 403 as a status, not as digits inside a port number, an ID or a log timestamp's milliseconds (",403").
FORBIDDEN = re.compile(r"(?<![\w.:,-])403(?![\w.:-])|[Ff]orbidden")


def rbac_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def doc(kind: str) -> dict[str, Any]:
    return next(d for d in rbac_docs() if d["kind"] == kind)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with own_control_plane(tmp_path_factory.mktemp("rbac-controlplane"), RBAC) as kube:
        yield kube


@pytest.fixture(scope="module")
def token_kubeconfig(plane: Kube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig holding only a TokenRequest token for the ServiceAccount from deploy/."""
    path = service_account_kubeconfig(plane, tmp_path_factory.mktemp("rbac"))
    # The identity really is the ServiceAccount, not admin: it may not even list Secrets.
    assert not can_i(plane, path, "list", "secrets", "-n", SYSTEM_NS)
    return path


@pytest.fixture(scope="module")
def world(plane: Kube) -> dict[str, str]:
    """A namespace the cloud's namespaceSelector admits."""
    ns = f"rbac-{uuid.uuid4().hex[:6]}"
    plane.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={"ecsnic-rbac": "in"})))
    return {"namespace": ns}


def set_rules(plane: Kube, kind: str, rules: list[dict[str, Any]]) -> None:
    body = copy.deepcopy(doc(kind))
    body["rules"] = rules
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


class Outcome:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.broken: str | None = None

    def __repr__(self) -> str:
        return f"steps={self.steps} broken={self.broken!r}"


def run_cycle(
    plane: Kube, simulator: SimulatorProcess, kubeconfig: Path, namespace: str, log_path: Path, timeout: float
) -> Outcome:
    """Cloud Ready -> attach by nodeName -> Ready -> delete -> finalizer released; stops at the first step that
    does not happen within `timeout` or as soon as the operator logs a 403."""
    outcome = Outcome()
    server = str(uuid.uuid4())
    simulator.add_server(server, max_nics=4)
    node = f"node-{server[:8]}"
    plane.core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(name=node), spec=client.V1NodeSpec(provider_id=f"openstack:///{server}")
        )
    )
    # A fresh EcsCloud each time: a Ready written by an earlier run must not count for this one. And no intent
    # signing key: each cycle's operator must read or create its own, so the create rule is proven too.
    plane.kubectl("delete", "secret", "-n", SYSTEM_NS, "ecs-nic-operator-intent-key", "--ignore-not-found")
    plane.kubectl("delete", "ecscloud", "default", "--ignore-not-found", "--wait=true")
    apply_cloud(plane, simulator.url, namespaceSelector={"matchLabels": {"ecsnic-rbac": "in"}})
    op = OperatorProcess(kubeconfig, log_path, args=["--health-port", str(free_port()), "--resync-period", "30"])
    op.start()

    def wait(step: str, probe: Any) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                outcome.steps.append(step)
                return True
            text = op.log_text()
            if FORBIDDEN.search(text):
                line = next(line for line in text.splitlines() if FORBIDDEN.search(line))
                outcome.broken = f"{step}: operator logged {line.strip()[:300]}"
                return False
            time.sleep(0.2)
        outcome.broken = f"{step}: did not happen within {timeout:.0f} s"
        return False

    def cloud_ready() -> bool:
        cloud = plane.custom.get_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", "default")
        cond = condition(cloud, "Ready")
        return bool(cond and cond["status"] == "True")

    def nic_ready() -> bool:
        cond = condition(plane.get_attachment(namespace, name), "Ready")
        return bool(cond and cond["status"] == "True")

    name = f"nic-{server[:8]}"
    try:
        if not wait("cloud Ready", cloud_ready):
            return outcome
        plane.create_attachment(namespace, name, {"nodeName": node, "netId": NET_A})
        if not wait("attachment Ready", nic_ready):
            return outcome
        if not wait("NIC on the server", lambda: len(simulator.ports_of(server)) == 1):
            return outcome
        plane.delete_attachment(namespace, name)
        if not wait("finalizer released", lambda: not plane.attachment_exists(namespace, name)):
            return outcome
        if not wait("NIC detached", lambda: simulator.ports_of(server) == []):
            return outcome
        # Events are best effort for the cycle, so a missing permission only shows in the log: look once more.
        time.sleep(0.5)
        wait("no 403 logged", lambda: not FORBIDDEN.search(op.log_text()))
        return outcome
    finally:
        op.stop()
        cleanup(plane, namespace, name)


def cleanup(plane: Kube, namespace: str, name: str) -> None:
    """Admin removes what a broken variant left behind, finalizer included."""
    try:
        plane.patch_attachment(namespace, name, {"metadata": {"finalizers": None}})
        plane.delete_attachment(namespace, name)
    except client.ApiException:
        pass


def variants() -> list[tuple[str, str, int, str]]:
    """(kind, label, rule index, verb) for every verb of every rule: the one thing each variant removes."""
    out: list[tuple[str, str, int, str]] = []
    for kind in ("ClusterRole", "Role"):
        for i, rule in enumerate(doc(kind)["rules"]):
            groups = ",".join(g or "core" for g in rule["apiGroups"])
            for verb in rule["verbs"]:
                out.append((kind, f"{kind}: {verb} {groups}/{','.join(rule['resources'])}", i, verb))
    return out


def without(kind: str, index: int, verb: str) -> list[dict[str, Any]]:
    rules = copy.deepcopy(doc(kind)["rules"])
    rules[index]["verbs"] = [v for v in rules[index]["verbs"] if v != verb]
    return [r for r in rules if r["verbs"]]


def test_rbac_rules_are_exactly_the_documented_ones() -> None:
    """The list in the operations docs and the report is this one; a new rule needs a new proof."""
    got = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in doc("ClusterRole")["rules"]}
    assert got == {
        (("ecsnic.io",), ("ecsnicattachments",), ("list", "watch", "patch")),
        (("ecsnic.io",), ("ecsnicattachments/status",), ("patch",)),
        (("ecsnic.io",), ("ecsclouds",), ("list", "watch")),
        (("ecsnic.io",), ("ecsclouds/status",), ("patch",)),
        (("",), ("nodes",), ("get",)),
        (("",), ("namespaces",), ("get",)),
        (("",), ("events",), ("create",)),
    }
    assert doc("Role")["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    assert doc("Role")["metadata"]["namespace"] == SYSTEM_NS


def test_full_cycle_with_only_the_shipped_rbac_then_each_rule_removed_breaks_it(
    plane: Kube, simulator: SimulatorProcess, token_kubeconfig: Path, world: dict[str, str], tmp_path: Path
) -> None:
    ns = world["namespace"]
    full = run_cycle(plane, simulator, token_kubeconfig, ns, tmp_path / "full.log", timeout=30)
    assert full.broken is None, f"the shipped RBAC does not suffice: {full}\n{(tmp_path / 'full.log').read_text()}"

    report: list[str] = []
    survivors: list[str] = []
    try:
        for n, (kind, label, index, verb) in enumerate(variants()):
            set_rules(plane, kind, without(kind, index, verb))
            time.sleep(0.3)  # the authorizer's informer picks the change up
            outcome = run_cycle(plane, simulator, token_kubeconfig, ns, tmp_path / f"variant-{n}.log", timeout=15)
            report.append(f"without {label}: {outcome.broken or 'CYCLE COMPLETED'}")
            if outcome.broken is None:
                survivors.append(label)
            set_rules(plane, kind, doc(kind)["rules"])
    finally:
        for kind in ("ClusterRole", "Role"):
            set_rules(plane, kind, doc(kind)["rules"])
        print("\n".join(report))
    assert not survivors, f"these permissions are not needed by the cycle: {survivors}\n" + "\n".join(report)
