"""The Helm chart: lint, schema, template, every toggle on and off applied to the real API server (server-side
dry-run), CRDs from crds/ only, the same RBAC, probes and security context as the plain manifests in
deploy/manifests/, least privilege when limited to some namespaces, and a README that lists every value."""

from __future__ import annotations

import json
import re
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
RELEASE = "ecs-nic-operator"  # the one release name README.md, docs/operations.md and the chart README use
# `helm template` assumes Kubernetes 1.20 unless told; the chart needs >= 1.31 (like the API server used here).
KUBE_VERSION = ["--kube-version", "1.34.0"]

# Every toggle of the chart, off and on. Each set is rendered, linted and dry-run on the real API server.
ALL_ON = [
    "replicaCount=2",
    "leaderElection.id=nic-leader",
    "podDisruptionBudget.minAvailable=1",
    "watchNamespaces={team-a,team-b}",
    "serviceMonitor.enabled=true",
    "serviceMonitor.labels.release=prometheus",
    "serviceMonitor.relabelings[0].targetLabel=cluster",
    "serviceMonitor.relabelings[0].replacement=test",
    "prometheusRule.enabled=true",
    "prometheusRule.labels.release=prometheus",
    "grafanaDashboard.enabled=true",
    "grafanaDashboard.namespace=monitoring",
    "serviceAccount.annotations.iam\\.example\\.com/role=ecs-nic",
    "crds.keep=false",
    "image.digest=sha256:" + "a" * 64,
    "tuning.specRetry=120",
    "tuning.workers=8",
    "tuning.stuckAfter=600",
    "extraArgs={--cloud-timeout=20}",
    "extraEnv[0].name=HTTPS_PROXY",
    "extraEnv[0].value=http://proxy.internal:3128",
    "extraEnv[1].name=ECSNIC_BACKOFF_MAX",
    "extraEnv[1].value=30",
    "extraVolumes[0].name=ca",
    "extraVolumes[0].configMap.name=private-ca",
    "extraVolumeMounts[0].name=ca",
    "extraVolumeMounts[0].mountPath=/etc/private-ca",
    "topologySpreadConstraints[0].maxSkew=1",
    "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
    "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    "topologySpreadConstraints[0].labelSelector.matchLabels.app\\.kubernetes\\.io/name=ecs-nic-operator",
    "podAnnotations.a=b",
    "podLabels.team=net",
    "priorityClassName=system-cluster-critical",
]
ALL_OFF = [
    "metrics.enabled=false",
    "crds.install=false",
    "serviceAccount.create=false",
    "serviceAccount.name=existing-sa",
    "leaderElection.enabled=false",
    "podDisruptionBudget.enabled=false",
    "podSecurityContext.runAsUser=null",
    "podSecurityContext.runAsGroup=null",
    "podSecurityContext.fsGroup=null",
]
VARIANTS = {
    "defaults": [],
    "all-on": ALL_ON,
    "all-off": ALL_OFF,
    "ha-defaults": ["replicaCount=2"],
    "one-replica-leader-elected": ["leaderElection.enabled=true", "leaderElection.namespace=kube-system"],
}


@cache
def helm_binary() -> str:
    """Built from its Go module by hack/helm/build.sh (cached); a failure is an error, never a skip."""
    proc = subprocess.run(["bash", str(ROOT / "hack" / "helm" / "build.sh")], stdout=subprocess.PIPE, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), "building helm failed; see the output above"
    return proc.stdout.strip().splitlines()[-1]


def helm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, env=env)


def set_args(sets: list[str]) -> list[str]:
    out: list[str] = []
    for s in sets:
        out += ["--set", s]
    return out


def render(*sets: str, release: str = RELEASE, namespace: str = NS) -> list[dict[str, Any]]:
    result = helm("template", release, str(CHART), "--namespace", namespace, *KUBE_VERSION, *set_args(list(sets)))
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def refused(*sets: str) -> str:
    result = helm("template", RELEASE, str(CHART), "--namespace", NS, *KUBE_VERSION, *set_args(list(sets)))
    assert result.returncode != 0, f"{sets} was accepted"
    return result.stderr


def plain() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = of(docs, kind, name)
    assert len(found) == 1, (kind, name, [(d["kind"], d["metadata"]["name"]) for d in docs])
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    c: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return c


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    p: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return p


def rules_of(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(namespace or '*', group, resource, verb) for every rule of every Role and ClusterRole."""
    out: set[tuple[str, str, str, str]] = set()
    for d in docs:
        if d["kind"] not in ("Role", "ClusterRole"):
            continue
        where = d["metadata"].get("namespace", "*")
        for rule in d["rules"]:
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    for v in rule["verbs"]:
                        out.add((where, g, r, v))
    return out


# -- lint and schema ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_is_clean(variant: str) -> None:
    result = helm("lint", "--strict", str(CHART), "--namespace", NS, *set_args(VARIANTS[variant]))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["foo=bar"], "foo"),
        (["replicacount=2"], "replicacount"),
        (["metrics.prot=9090"], "prot"),
        (["log.format=xml"], "/log/format"),
        (["metrics.port=abc"], "/metrics/port"),
        (["watchNamespaces[0]=Team_A"], "/watchNamespaces/0"),
        (["image.digest=latest"], "/image/digest"),
        (["serviceMonitor.interval=30 seconds"], "/serviceMonitor/interval"),
        (["extraArgs={cloud-timeout=20}"], "/extraArgs/0"),
    ],
)
def test_bad_values_are_refused_with_a_message(sets: list[str], needle: str) -> None:
    message = refused(*sets)
    assert "values don't meet the specifications of the schema" in message, message
    assert needle in message, message


def test_more_than_one_replica_without_leader_election_is_refused() -> None:
    message = refused("replicaCount=2", "leaderElection.enabled=false")
    assert "leader election" in message


def test_kube_version_is_required() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.31.0-0"
    result = helm("template", RELEASE, str(CHART), "--kube-version", "1.30.0")
    assert result.returncode != 0 and "kubeVersion" in result.stderr, result.stderr
    assert helm("template", RELEASE, str(CHART), "--kube-version", "1.31.0").returncode == 0


def leaves(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        out: list[str] = []
        for k, v in values.items():
            out += leaves(v, f"{prefix}.{k}" if prefix else k)
        return out
    return [prefix]


def test_readme_and_schema_cover_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    readme = (CHART / "README.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    all_leaves = leaves(values)
    assert len(all_leaves) > 50
    for leaf in all_leaves:
        parts = leaf.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        assert prefixes & rows, f"{leaf} is not in the chart README's values table"
        node = schema
        for part in parts:
            if node.get("additionalProperties") not in (None, False) or "properties" not in node:
                break  # a free-form object (labels, securityContext): its keys are not the chart's
            assert part in node["properties"], f"{leaf} is not in values.schema.json"
            node = node["properties"][part]
    for row in rows:
        node: Any = values
        for part in row.split("."):
            assert isinstance(node, dict) and part in node, f"README documents {row}, which values.yaml lacks"
            node = node[part]


def test_notes_say_what_to_do_next(kube: Kube) -> None:
    env = kube.control_plane.env()
    # The session's cluster already has the CRDs (from kubectl apply): the release must not try to own them.
    sets = set_args(["replicaCount=2", "crds.install=false"])
    result = helm("install", RELEASE, str(CHART), "-n", NS, "--dry-run=server", *sets, env=env)
    assert result.returncode == 0, result.stderr
    notes = result.stdout[result.stdout.index("NOTES:") :]
    assert "rollout status deploy/ecs-nic-operator" in notes and "kubectl get ecscloud" in notes
    assert "leader election through Lease ecs-nic-system/ecs-nic-operator" in notes and "docs/api.md" in notes
    assert "kubectl apply -f crds/" in notes


# -- rendering --------------------------------------------------------------------------------------------------


def test_crds_come_only_from_the_repository_crds_folder(tmp_path: Path) -> None:
    link = CHART / "files" / "crds"
    assert link.is_symlink() and link.resolve() == (ROOT / "crds").resolve()
    assert not (CHART / "crds").exists()  # helm would install a second, never-upgraded copy from there
    originals = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))}
    rendered = of(render(), "CustomResourceDefinition")
    assert sorted(d["metadata"]["name"] + ".yaml" for d in rendered) == sorted(originals)
    for doc in rendered:
        original = originals[doc["metadata"]["name"] + ".yaml"]
        assert doc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert {k: v for k, v in doc.items() if k != "metadata"} == {
            k: v for k, v in original.items() if k != "metadata"
        }
        assert doc["metadata"]["name"] == original["metadata"]["name"]
    assert "annotations" not in of(render("crds.keep=false"), "CustomResourceDefinition")[0]["metadata"]
    assert of(render("crds.install=false"), "CustomResourceDefinition") == []
    # A packaged chart (what a chart repository serves) carries the real files, byte for byte.
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    with tarfile.open(next(tmp_path.glob("*.tgz"))) as tgz:
        packaged = {
            Path(m.name).name: tgz.extractfile(m).read()  # type: ignore[union-attr]
            for m in tgz.getmembers()
            if m.isfile() and "/files/crds/" in m.name
        }
    assert packaged == {p.name: p.read_bytes() for p in sorted((ROOT / "crds").glob("*.yaml"))}


def test_chart_in_ha_and_plain_manifests_agree() -> None:
    chart, manifests = render("replicaCount=2"), plain()
    for kind in ("ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
        assert sorted(d["metadata"]["name"] for d in of(chart, kind)) == sorted(
            d["metadata"]["name"] for d in of(manifests, kind)
        ), kind
    assert one(chart, "ClusterRole")["rules"] == one(manifests, "ClusterRole")["rules"]
    for role in ("ecs-nic-operator-credentials", "ecs-nic-operator-leader-election"):
        assert one(chart, "Role", role)["rules"] == one(manifests, "Role", role)["rules"], role
        assert one(chart, "RoleBinding", role)["subjects"] == one(manifests, "RoleBinding", role)["subjects"], role
    assert one(chart, "ClusterRoleBinding")["subjects"] == one(manifests, "ClusterRoleBinding")["subjects"]
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget"):
        assert {d["metadata"]["namespace"] for d in of(chart, kind)} == {NS}, kind
    cc, mc = container(chart), container(manifests)
    for key in ("args", "livenessProbe", "readinessProbe", "securityContext", "resources", "ports", "volumeMounts"):
        assert cc[key] == mc[key], key
    assert pod(chart)["securityContext"] == pod(manifests)["securityContext"]
    assert pod(chart)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert mc["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {e["name"]: e.get("value") for e in cc["env"]} == {e["name"]: e.get("value") for e in mc["env"]}
    assert one(chart, "Service")["spec"]["ports"] == one(manifests, "Service")["spec"]["ports"]
    assert one(chart, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    for docs in (chart, manifests):
        assert one(docs, "Deployment")["spec"]["replicas"] == 2
        assert one(docs, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_high_availability_is_leader_election_with_a_lease_role_only() -> None:
    docs = render("replicaCount=2")
    args = container(docs)["args"]
    assert "--leader-elect" in args
    assert "--leader-election-namespace=$(POD_NAMESPACE)" in args and "--leader-election-id=ecs-nic-operator" in args
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    lease = one(docs, "Role", "ecs-nic-operator-leader-election")
    assert lease["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    assert not [r for r in rules_of(docs) if r[2] == "leases" and r[0] != NS]
    # One replica: no election, no Lease rule, no PDB, and the update never runs two at once.
    single = render()
    assert "--leader-elect" not in container(single)["args"] and not of(single, "PodDisruptionBudget")
    assert not [r for r in rules_of(single) if r[2] == "leases"]
    assert one(single, "Deployment")["spec"]["strategy"]["type"] == "Recreate"
    # Names are release-scoped: another release gets its own Lease and its own cluster-wide objects.
    other = render("replicaCount=2", release="second")
    assert "--leader-election-id=second-ecs-nic-operator" in container(other)["args"]
    assert one(other, "ClusterRole")["metadata"]["name"] == "second-ecs-nic-operator"
    moved = render("leaderElection.enabled=true", "leaderElection.namespace=kube-system", "leaderElection.id=x")
    assert "--leader-election-namespace=kube-system" in container(moved)["args"]
    assert one(moved, "Role", "ecs-nic-operator-leader-election")["metadata"]["namespace"] == "kube-system"


def test_watch_namespaces_use_roles_and_grant_nothing_more() -> None:
    cluster_wide = rules_of(render())
    docs = render("watchNamespaces={team-a,team-b}")
    scoped = rules_of(docs)
    assert container(docs)["args"][:2] == ["--namespace=team-a", "--namespace=team-b"]
    attachment_rules = {r for r in scoped if r[2].startswith("ecsnicattachments")}
    assert {r[0] for r in attachment_rules} == {"team-a", "team-b"}
    # Cluster-wide only what is cluster-scoped: EcsClouds, Nodes and Namespaces (get).
    assert {r[1:] for r in scoped if r[0] == "*"} == {
        ("ecsnic.io", "ecsclouds", "list"),
        ("ecsnic.io", "ecsclouds", "watch"),
        ("ecsnic.io", "ecsclouds/status", "patch"),
        ("", "nodes", "get"),
        ("", "namespaces", "get"),
    }
    # Events: in each watched namespace and in the operator's own (where kopf posts EcsCloud Events).
    assert {r[0] for r in scoped if r[2] == "events"} == {"team-a", "team-b", NS}
    # Nothing beyond what the cluster-wide setup grants, namespace by namespace.
    assert {r[1:] for r in scoped} <= {r[1:] for r in cluster_wide}
    for role in of(docs, "Role"):
        where = (role["metadata"]["name"], role["metadata"]["namespace"])
        bindings = [b for b in of(docs, "RoleBinding") if (b["metadata"]["name"], b["metadata"]["namespace"]) == where]
        assert len(bindings) == 1 and bindings[0]["roleRef"]["name"] == role["metadata"]["name"], where
        assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NS}]


def test_values_reach_the_deployment() -> None:
    docs = render(*ALL_ON)
    c, p = container(docs), pod(docs)
    assert c["image"] == "ghcr.io/ecs-nic-operator/ecs-nic-operator@sha256:" + "a" * 64
    assert c["args"][-1] == "--cloud-timeout=20"
    env = {e["name"]: e.get("value") for e in c["env"]}
    # Numbers given with --set are rendered as strings: the API server refuses a number for EnvVar.value.
    assert env["ECSNIC_BACKOFF_MAX"] == "30" and env["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert env["ECSNIC_SPEC_RETRY"] == "120" and env["ECSNIC_WORKERS"] == "8" and "ECSNIC_CLOUD_TIMEOUT" not in env
    assert env["ECSNIC_STUCK_AFTER"] == "600" and "ECSNIC_STUCK_RETRY" not in env
    assert {"name": "ca", "mountPath": "/etc/private-ca"} in c["volumeMounts"]
    assert {"name": "ca", "configMap": {"name": "private-ca"}} in p["volumes"]
    assert p["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert p["priorityClassName"] == "system-cluster-critical" and p["serviceAccountName"] == RELEASE
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"iam.example.com/role": "ecs-nic"}
    assert one(docs, "ServiceMonitor")["metadata"]["labels"]["release"] == "prometheus"
    dashboard = one(docs, "ConfigMap", "ecs-nic-operator-dashboard")
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert json.loads(dashboard["data"]["ecs-nic-operator.json"])["uid"] == "ecs-nic-operator"
    alerts = {r["alert"] for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "EcsNicAttachmentsNotReady",
        "EcsNicDetachStuck",
        "EcsNicCloudThrottled",
        "EcsNicCredentialsRejected",
        "EcsNicNoLeader",
        "EcsNicOperatorDown",
    }
    off = render(*ALL_OFF)
    assert "securityContext" in pod(off) and "runAsUser" not in pod(off)["securityContext"]
    assert pod(off)["serviceAccountName"] == "existing-sa" and not of(off, "ServiceAccount")
    assert not of(off, "Service") and "--metrics-port=0" in container(off)["args"]
    assert "serviceAccount.name is required" in refused("serviceAccount.create=false")


def test_extra_env_numbers_from_set_are_strings() -> None:
    """Issue 17.9: `--set extraEnv[0].value=30` used to render `value: 30`, which the API server refuses."""
    c = container(render("extraEnv[0].name=ECSNIC_WORKERS", "extraEnv[0].value=30"))
    assert {"name": "ECSNIC_WORKERS", "value": "30"} in c["env"]


# -- the real API server --------------------------------------------------------------------------------------


def monitoring_crds() -> list[Path]:
    """The Prometheus Operator's own ServiceMonitor and PrometheusRule CRDs, from its Go module (a failure to
    fetch them is an error, never a skip)."""
    script = ROOT / "hack" / "prometheus-operator" / "crds.sh"
    proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    assert proc.returncode == 0, "fetching the Prometheus Operator CRDs failed; see the output above"
    folder = Path(proc.stdout.strip().splitlines()[-1])
    found = [folder / f"monitoring.coreos.com_{kind}.yaml" for kind in ("servicemonitors", "prometheusrules")]
    assert all(p.is_file() for p in found), found
    return found


@pytest.fixture(scope="module")
def prepared(kube: Kube) -> Kube:
    """What a real cluster would have before the chart: the Prometheus Operator's CRDs and the namespaces."""
    for crd in monitoring_crds():
        kube.kubectl("apply", "--server-side", "-f", str(crd))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com")
    for ns in (NS, "team-a", "team-b", "monitoring"):
        kube.kubectl("create", "namespace", ns, check=False)
    return kube


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_toggle_passes_the_real_api_server(prepared: Kube, variant: str) -> None:
    docs = render(*VARIANTS[variant])
    result = prepared.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(docs)
    )
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout + result.stderr


def test_plain_manifests_pass_the_real_api_server(prepared: Kube) -> None:
    result = prepared.kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS))
    assert result.stdout.count("(server dry run)") == len(plain()), result.stdout
