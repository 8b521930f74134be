"""Fixtures that run a real kube-apiserver + etcd once per session and give each test a namespace.

Nothing here is mocked: the control plane is built from its Go modules (hack/controlplane/build.sh),
and a failure to build or start it is an error, never a skip, so a green run always means the
real-API-server tests ran.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, repo_root
from tests.integration.kube import Kube


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    binaries = ensure_binaries()
    log_path = tmp_path_factory.mktemp("controlplane") / "controlplane.log"
    with open(log_path, "w") as log, ControlPlane(binaries, log=log) as cp:
        subprocess.run(
            ["kubectl", "apply", "-f", str(repo_root() / "crds")], env=cp.env(), check=True, capture_output=True
        )
        subprocess.run(
            ["kubectl", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
            env=cp.env(),
            check=True,
            capture_output=True,
        )
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
