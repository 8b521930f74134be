"""The Helm chart: lint, template, applied to the real API server (server-side dry-run), CRDs from crds/ only,
and the same RBAC, probes and security context as the plain manifests in deploy/manifests/."""

from __future__ import annotations

import subprocess
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_nic_operator.devenv.controlplane import repo_root
from tests.integration.kube import Kube

ROOT = repo_root()
CHART = ROOT / "deploy" / "helm" / "ecs-nic-operator"
MANIFESTS = ROOT / "deploy" / "manifests"
NS = "ecs-nic-system"


@cache
def helm_binary() -> str:
    """Built from its Go module by hack/helm/build.sh (cached); a failure is an error, never a skip."""
    proc = subprocess.run(["bash", str(ROOT / "hack" / "helm" / "build.sh")], stdout=subprocess.PIPE, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), "building helm failed; see the output above"
    return proc.stdout.strip().splitlines()[-1]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False)


def render(*sets: str, crds: bool = False) -> list[dict[str, Any]]:
    args = ["template", "ecs-nic", str(CHART), "--namespace", NS]
    for s in sets:
        args += ["--set", s]
    if crds:
        args.append("--include-crds")
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def plain() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, (kind, [d["kind"] for d in docs])
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    c: dict[str, Any] = spec["containers"][0]
    return c


def test_helm_lint_is_clean() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    result = helm("lint", "--strict", str(CHART), "--set", "peering.enabled=true,replicaCount=2")
    assert result.returncode == 0, result.stdout + result.stderr


def test_crds_come_only_from_the_repository_crds_folder(tmp_path: Path) -> None:
    link = CHART / "crds"
    assert link.is_symlink() and link.resolve() == (ROOT / "crds").resolve()
    originals = {p.name: p.read_bytes() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    rendered = [d for d in render(crds=True) if d["kind"] == "CustomResourceDefinition"]
    assert sorted(d["metadata"]["name"] + ".yaml" for d in rendered) == sorted(originals)
    for doc in rendered:
        assert doc == yaml.safe_load(originals[doc["metadata"]["name"] + ".yaml"])
    # A packaged chart (what a chart repository serves) carries the real files, byte for byte.
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    with tarfile.open(next(tmp_path.glob("*.tgz"))) as tgz:
        packaged = {
            Path(m.name).name: tgz.extractfile(m).read()  # type: ignore[union-attr]
            for m in tgz.getmembers()
            if m.isfile() and "/crds/" in m.name
        }
    assert packaged == originals


def test_chart_and_plain_manifests_agree() -> None:
    chart, manifests = render(), plain()
    for kind in ("ClusterRole", "Role"):
        assert one(chart, kind)["rules"] == one(manifests, kind)["rules"], kind
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"):
        assert one(chart, kind)["metadata"]["namespace"] == NS
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        assert one(chart, kind)["subjects"] == one(manifests, kind)["subjects"]
    cc, mc = container(chart), container(manifests)
    for key in ("args", "livenessProbe", "readinessProbe", "securityContext", "resources", "ports", "volumeMounts"):
        assert cc[key] == mc[key], key
    pod_c = one(chart, "Deployment")["spec"]["template"]["spec"]
    pod_m = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod_c["securityContext"] == pod_m["securityContext"]
    assert pod_c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert mc["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env_c = {e["name"]: e.get("value") for e in cc["env"]}
    env_m = {e["name"]: e.get("value") for e in mc["env"]}
    assert env_c == env_m
    assert one(chart, "Service")["spec"]["ports"] == one(manifests, "Service")["spec"]["ports"]


def test_values_reach_the_deployment() -> None:
    docs = render(
        "watchNamespaces={team-a,team-b}",
        "resyncPeriod=120",
        "log.level=DEBUG",
        "log.format=text",
        "image.tag=9.9.9",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy.internal:3128",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "nodeSelector.role=infra",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].key=zone",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].operator=Exists",
        "metrics.enabled=false",
    )
    c = container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert c["args"][:2] == ["--namespace=team-a", "--namespace=team-b"] and "--metrics-port=0" in c["args"]
    assert c["image"].endswith(":9.9.9")
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["ECSNIC_RESYNC_PERIOD"] == "120" and env["ECSNIC_LOG_LEVEL"] == "DEBUG"
    assert env["ECSNIC_LOG_FORMAT"] == "text" and env["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["nodeSelector"] == {"role": "infra"}
    assert "nodeAffinity" in pod["affinity"]
    assert not [d for d in docs if d["kind"] == "Service"]


def test_peering_adds_standbys_and_only_the_peering_rule() -> None:
    docs = render("peering.enabled=true", "replicaCount=2")
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert "--peering" in container(docs)["args"]
    extra = [r for r in one(docs, "ClusterRole")["rules"] if r not in one(plain(), "ClusterRole")["rules"]]
    assert extra == [
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list", "watch", "patch"]}
    ]
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "ecs-nic-operator"
    # Two active replicas without peering would both act on every object: the chart refuses.
    result = helm("template", "x", str(CHART), "--set", "replicaCount=2")
    assert result.returncode != 0 and "peering" in result.stderr


def test_rendered_chart_and_plain_manifests_pass_the_real_api_server(kube: Kube) -> None:
    kube.kubectl("apply", "-f", str(MANIFESTS / "00-namespace.yaml"))
    result = kube.kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS))
    assert "(server dry run)" in result.stdout
    chart = yaml.safe_dump_all(render())
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=chart)
    assert result.stdout.count("(server dry run)") == len(render())
    # With peering: the kopf CRD passes the server's validation too (the peering object needs it installed).
    peering = [d for d in render("peering.enabled=true", "replicaCount=2") if d["kind"] != "ClusterKopfPeering"]
    kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(peering))


@pytest.mark.parametrize("crd", sorted(p.name for p in (ROOT / "crds").glob("*.yaml")))
def test_chart_crds_pass_the_real_api_server(kube: Kube, crd: str) -> None:
    docs = [d for d in render(crds=True) if d["kind"] == "CustomResourceDefinition"]
    doc = next(d for d in docs if d["metadata"]["name"] + ".yaml" == crd)
    kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
