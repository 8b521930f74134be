"""Acting as the operator's ServiceAccount, on a control plane of a test's own: what the RBAC tests share."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml
from kubernetes import client, config

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, repo_root
from tests.integration.kube import Kube

SA, SYSTEM_NS = "ecs-nic-operator", "ecs-nic-system"


@contextlib.contextmanager
def own_control_plane(folder: Path, *manifests: Path) -> Iterator[Kube]:
    """A control plane no admin-identity operator watches, with the CRDs, the operator's namespace and
    ``manifests`` applied."""
    with open(folder / "controlplane.log", "w") as log, ControlPlane(ensure_binaries(), log=log) as cp:
        kube = Kube(config.new_client_from_config(config_file=str(cp.kubeconfig)), cp)
        kube.kubectl("apply", "-f", str(repo_root() / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        kube.kubectl("apply", "-f", str(repo_root() / "deploy" / "manifests" / "00-namespace.yaml"))
        for manifest in manifests:
            kube.kubectl("apply", "-f", str(manifest))
        yield kube


def service_account_kubeconfig(plane: Kube, folder: Path, namespace: str | None = None) -> Path:
    """A kubeconfig holding only a TokenRequest token of the operator's ServiceAccount (context ``namespace``)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc"], expiration_seconds=3600)
    )
    token = plane.core.create_namespaced_service_account_token(SA, SYSTEM_NS, request).status.token
    admin = yaml.safe_load(plane.control_plane.kubeconfig.read_text())
    context = {"cluster": admin["clusters"][0]["name"], "user": SA, **({"namespace": namespace} if namespace else {})}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": SA, "user": {"token": token}}],
        "contexts": [{"name": SA, "context": context}],
        "current-context": SA,
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def can_i(plane: Kube, kubeconfig: Path, *args: str) -> bool:
    """``kubectl auth can-i`` as whoever ``kubeconfig`` names."""
    result = subprocess.run(
        ["kubectl", "auth", "can-i", *args],
        env={**plane.control_plane.env(), "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() == "yes"
