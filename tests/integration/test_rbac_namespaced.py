"""The chart with watchNamespaces grants Roles in the watched namespaces instead of the attachment rules in a
ClusterRole, and that is enough: the operator, as the chart's ServiceAccount with only the chart's RBAC and
`--namespace`, runs a full cycle (EcsCloud Ready, attach by nodeName, Ready, delete, NIC detached, finalizer
released) without a single 403, and may not even list attachments in a namespace it does not serve.

A control plane of its own, like test_rbac.py: no admin-identity operator may reconcile these objects."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ecs_nic_operator.devenv.controlplane import free_port
from ecs_nic_operator.devenv.processes import SimulatorProcess
from tests.integration.conftest import NET_A, apply_cloud
from tests.integration.identity import SYSTEM_NS, can_i, own_control_plane, service_account_kubeconfig
from tests.integration.kube import Kube, condition
from tests.integration.test_helm import render
from tests.integration.test_rbac import FORBIDDEN

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with own_control_plane(tmp_path_factory.mktemp("rbac-ns-controlplane")) as kube:
        yield kube


def token_kubeconfig(plane: Kube, folder: Path) -> Path:
    return service_account_kubeconfig(plane, folder, namespace=SYSTEM_NS)


def wait(what: str, probe: Any, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        text = log.read_text(errors="replace")
        assert not FORBIDDEN.search(text), f"{what}: the operator hit a 403:\n{text[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s\n{log.read_text(errors='replace')[-3000:]}")


def test_namespaced_chart_rbac_runs_a_full_cycle(plane: Kube, simulator: SimulatorProcess, tmp_path: Path) -> None:
    served, other = f"served-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    for ns in (served, other):
        plane.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    rbac = [d for d in render(f"watchNamespaces={{{served}}}") if d["kind"] in RBAC_KINDS]
    assert {d["kind"] for d in rbac} == RBAC_KINDS
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    kubeconfig = token_kubeconfig(plane, tmp_path)
    time.sleep(0.5)  # the authorizer's informer picks the new bindings up
    assert can_i(plane, kubeconfig, "patch", "ecsnicattachments", "-n", served)
    assert not can_i(plane, kubeconfig, "list", "ecsnicattachments", "-n", other)
    assert not can_i(plane, kubeconfig, "list", "ecsnicattachments", "--all-namespaces")
    assert not can_i(plane, kubeconfig, "create", "events", "-n", other)

    server = str(uuid.uuid4())
    simulator.add_server(server, max_nics=4)
    node = f"node-{server[:8]}"
    plane.core.create_node(
        client.V1Node(
            metadata=client.V1ObjectMeta(name=node), spec=client.V1NodeSpec(provider_id=f"openstack:///{server}")
        )
    )
    apply_cloud(plane, simulator.url)
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    argv = ["run", f"--namespace={served}", "--bind-address=127.0.0.1", "--resync-period=30"]
    argv += [f"--health-port={free_port()}", f"--metrics-port={free_port()}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecs_nic_operator.cli", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def cloud_ready() -> bool:
            cloud = plane.custom.get_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", "default")
            cond = condition(cloud, "Ready")
            return bool(cond and cond["status"] == "True")

        wait("EcsCloud Ready", cloud_ready, log)
        plane.create_attachment(served, "nic", {"nodeName": node, "netId": NET_A})
        plane.create_attachment(other, "nic", {"nodeName": node, "netId": NET_A})

        def nic_ready() -> bool:
            cond = condition(plane.get_attachment(served, "nic"), "Ready")
            return bool(cond and cond["status"] == "True")

        wait("attachment Ready", nic_ready, log)
        wait("NIC on the server", lambda: len(simulator.ports_of(server)) == 1, log)
        plane.delete_attachment(served, "nic")
        wait("finalizer released", lambda: not plane.attachment_exists(served, "nic"), log)
        wait("NIC detached", lambda: simulator.ports_of(server) == [], log)
        # The namespace it does not serve: untouched (no finalizer, no status), and no 403 tried there.
        untouched = plane.get_attachment(other, "nic")
        assert not untouched["metadata"].get("finalizers") and not untouched.get("status"), untouched
        time.sleep(1.0)
        assert not FORBIDDEN.search(log.read_text(errors="replace")), log.read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
