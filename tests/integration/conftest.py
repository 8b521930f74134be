"""Fixtures that run a real kube-apiserver + etcd once per session and give each test a namespace.

Nothing here is mocked: the control plane is built from its Go modules (hack/controlplane/build.sh),
and a failure to build or start it is an error, never a skip, so a green run always means the
real-API-server tests ran.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, install_crds
from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.kube import Kube, condition, wait_for


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    binaries = ensure_binaries()
    log_path = tmp_path_factory.mktemp("controlplane") / "controlplane.log"
    with open(log_path, "w") as log, ControlPlane(binaries, log=log) as cp:
        install_crds(cp.env())
        yield cp


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    return Kube(api_client, control_plane)


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")[:63].strip("-")
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(client.ApiException):
        kube.core.delete_namespace(name)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"python: {sys.version.split()[0]}", f"repo: {Path(__file__).resolve().parents[2]}"]


# -- the operator stack: simulator + EcsCloud + operator, shared by the lifecycle tests ---------------

SIM_PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SIM_TOKEN = "it-token-5f1c2e9a7b"
NET_A = "11111111-2222-4333-8444-555555555555"
SUBNET_A = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
NET_B = "66666666-7777-4888-8999-000000000000"
SUBNET_B = "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder = tmp_path_factory.mktemp("simulator")
    seed = {
        "projectId": SIM_PROJECT,
        "credentials": {"token": SIM_TOKEN, "accessKey": "ITAK0000000000000001", "secretKey": "it-sk-0123456789"},
        "servers": [],
        "networks": [
            {"id": NET_A, "subnetId": SUBNET_A, "cidr": "10.30.0.0/16"},
            {"id": NET_B, "subnetId": SUBNET_B, "cidr": "10.40.0.0/24"},
        ],
        "ports": [],
        "behaviour": {"dialect": "nova", "latency": 0.01, "activeAfter": 0.6, "detachAfter": 0.3},
    }
    (folder / "seed.json").write_text(json.dumps(seed))
    with open(folder / "simulator.log", "w") as log:
        sim = SimulatorProcess(folder / "seed.json", log=log)
        sim.start()
        yield sim
        sim.stop()


def apply_cloud(kube: Kube, url: str, name: str = "default", **spec: Any) -> None:
    manifest = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ecs-nic-system"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-credentials", "namespace": "ecs-nic-system"},
            "stringData": {"token": SIM_TOKEN},
        },
        {
            "apiVersion": "ecsnic.io/v1alpha1",
            "kind": "EcsCloud",
            "metadata": {"name": name},
            "spec": {
                "endpoint": url,
                "projectId": SIM_PROJECT,
                "credentials": {
                    "type": "Token",
                    "secretRef": {"namespace": "ecs-nic-system", "name": f"{name}-credentials"},
                },
                "rateLimit": {"qps": 100, "burst": 50},
                **spec,
            },
        },
    ]
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifest))


@pytest.fixture(scope="session")
def operator(
    kube: Kube, simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    apply_cloud(kube, simulator.url)
    folder = tmp_path_factory.mktemp("operator")
    op = OperatorProcess(kube.control_plane.kubeconfig, folder / "operator.log", args=["--resync-period", "4"])
    op.start()
    wait_for(lambda: cloud_ready(kube, "default"), timeout=30, what="EcsCloud default Ready")
    yield op
    op.stop()


@contextlib.contextmanager
def instead_of(shared: OperatorProcess, own: OperatorProcess, *, start: bool = True) -> Iterator[OperatorProcess]:
    """The shared operator steps aside for a test's own (which the test may kill or restart), and comes back."""
    shared.stop()
    try:
        if start:
            own.start()
        yield own
    finally:
        own.stop()
        shared.start()


@pytest.fixture
def own_operator(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator of the test's own, not started: tests that kill operators start, kill and restart it."""
    own = OperatorProcess(kube.control_plane.kubeconfig, tmp_path / "operator.log", args=["--resync-period", "4"])
    with instead_of(operator, own, start=False):
        try:
            yield own
        finally:
            simulator.behaviour(replyDelay=0)


def cloud_ready(kube: Kube, name: str) -> bool:
    try:
        cloud = kube.custom.get_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", name)
    except client.ApiException:
        return False
    cond = condition(cloud, "Ready")
    return bool(cond and cond["status"] == "True")


@pytest.fixture
def server(simulator: SimulatorProcess) -> str:
    """A fresh server on the simulator, so tests never see each other's NICs."""
    server_id = str(uuid.uuid4())
    simulator.add_server(server_id, max_nics=4)
    return server_id
