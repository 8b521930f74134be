"""The GitOps examples in deploy/gitops/ render and pass the real API server: the Kustomize base and overlays
(`kubectl kustomize`), the Argo CD Application (against Argo CD's own CRD) and the values it and the Flux
HelmRelease give the chart (rendered by helm, then dry-run)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_nic_operator.devenv.controlplane import repo_root
from tests.integration.kube import Kube
from tests.integration.test_helm import CHART, KUBE_VERSION, helm, monitoring_crds, one

ROOT = repo_root()
GITOPS = ROOT / "deploy" / "gitops"
KUSTOMIZE = GITOPS / "kustomize"


def kustomize(kube: Kube, folder: Path) -> list[dict[str, Any]]:
    result = kube.kubectl("kustomize", str(folder))
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def dry_run(kube: Kube, docs: list[dict[str, Any]]) -> None:
    result = kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(docs)
    )
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout + result.stderr


def args(docs: list[dict[str, Any]]) -> list[str]:
    a: list[str] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    return a


@pytest.fixture(scope="module")
def cluster(kube: Kube) -> Kube:
    argocd = subprocess.run(
        ["bash", str(ROOT / "hack" / "argocd" / "crds.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    assert argocd.returncode == 0, "fetching Argo CD's Application CRD failed; see the output above"
    kube.kubectl("apply", "--server-side", "-f", argocd.stdout.strip().splitlines()[-1])
    for crd in monitoring_crds():
        kube.kubectl("apply", "--server-side", "-f", str(crd))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/applications.argoproj.io")
    for ns in ("argocd", "ecs-nic-system"):
        kube.kubectl("create", "namespace", ns, check=False)
    return kube


def test_kustomize_base_is_the_crds_and_the_plain_manifests(cluster: Kube) -> None:
    docs = kustomize(cluster, KUSTOMIZE / "base")
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert sorted(d["metadata"]["name"] for d in crds) == ["ecsclouds.ecsnic.io", "ecsnicattachments.ecsnic.io"]
    for crd in crds:
        assert crd == yaml.safe_load((ROOT / "crds" / f"{crd['metadata']['name']}.yaml").read_text())
    plain = [
        d for p in sorted((ROOT / "deploy" / "manifests").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
    ]
    assert len(docs) == len(crds) + len([d for d in plain if d])
    assert "--leader-elect" in args(docs) and one(docs, "Deployment")["spec"]["replicas"] == 2
    dry_run(cluster, docs)


def test_kustomize_single_replica_overlay(cluster: Kube) -> None:
    docs = kustomize(cluster, KUSTOMIZE / "overlays" / "single-replica")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert args(docs) == ["--all-namespaces", "--metrics-port=8080", "--health-port=8081"]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("PodDisruptionBudget", "ecs-nic-operator") not in kinds
    assert ("Role", "ecs-nic-operator-leader-election") not in kinds
    dry_run(cluster, docs)


def test_kustomize_namespaced_overlay(cluster: Kube) -> None:
    docs = kustomize(cluster, KUSTOMIZE / "overlays" / "namespaced")
    assert args(docs)[0] == "--namespace=team-a" and "--all-namespaces" not in args(docs)
    env = {
        e["name"]: e.get("value") for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert one(docs, "Namespace", "team-a")
    dry_run(cluster, docs)


def chart_with(values: dict[str, Any], release: str, namespace: str, tmp_path: Path) -> list[dict[str, Any]]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = helm("template", release, str(CHART), "--namespace", namespace, "-f", str(values_file), *KUBE_VERSION)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_argocd_application_passes_its_crd_and_its_values_the_chart(cluster: Kube, tmp_path: Path) -> None:
    app = yaml.safe_load((GITOPS / "argocd" / "application.yaml").read_text())
    dry_run(cluster, [app])
    source = app["spec"]["source"]
    assert source["path"] == "deploy/helm/ecs-nic-operator" and (ROOT / source["path"] / "Chart.yaml").is_file()
    docs = chart_with(
        source["helm"]["valuesObject"], source["helm"]["releaseName"], app["spec"]["destination"]["namespace"], tmp_path
    )
    assert "--leader-elect" in args(docs)
    dry_run(cluster, docs)


def test_flux_helmrelease_values_pass_the_chart(cluster: Kube, tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all((GITOPS / "flux" / "helmrelease.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Namespace", "OCIRepository", "HelmRelease"}
    release = kinds["HelmRelease"]
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2" and kinds["OCIRepository"]["apiVersion"] == (
        "source.toolkit.fluxcd.io/v1"
    )
    assert release["spec"]["chartRef"] == {"kind": "OCIRepository", "name": kinds["OCIRepository"]["metadata"]["name"]}
    assert kinds["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    rendered = chart_with(
        release["spec"]["values"], release["spec"]["releaseName"], release["metadata"]["namespace"], tmp_path
    )
    assert one(rendered, "Deployment")["spec"]["replicas"] == 2
    dry_run(cluster, [kinds["Namespace"], *rendered])
