"""`ecs-nic-operator demo`: the simulator, the operator and the samples, all Ready, on a local control plane
(kube-apiserver + etcd) or, with ``--kubeconfig``, on an existing cluster such as kind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, free_port, install_crds, repo_root
from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from ecs_nic_operator.devenv.tools import use_virtualenv_tools, user_command

SAMPLES_NS = "demo"


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


@dataclass
class Cluster:
    """Where the demo runs: a kubeconfig, and whether the demo owns the cluster (and may leave it dirty)."""

    kubeconfig: Path
    url: str
    owned: bool

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


def kubectl(
    cluster: Cluster, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
) -> str:
    try:
        result = subprocess.run(
            ["kubectl", *args],
            env=cluster.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        if check:
            raise RuntimeError(f"kubectl {' '.join(args)} did not finish within {timeout} s") from None
        return ""
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def cloud_manifests(examples: Path, endpoint: str, seed: dict[str, object]) -> str:
    docs = list(yaml.safe_load_all((examples / "ecscloud.yaml").read_text()))
    creds = seed["credentials"]
    assert isinstance(creds, dict)
    for doc in docs:
        if doc["kind"] == "EcsCloud":
            doc["spec"]["endpoint"] = endpoint
        if doc["kind"] == "Secret":
            doc["stringData"] = {"accessKey": creds["accessKey"], "secretKey": creds["secretKey"]}
    return yaml.safe_dump_all(docs)


def wait_ready(cluster: Cluster, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(kubectl(cluster, "get", "ecsnic", "-n", SAMPLES_NS, "-o", "json"))["items"]
        ready = [
            i
            for i in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
        ]
        if items and len(ready) == len(items):
            return True
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def cluster_for(kubeconfig: str | None, workdir: Path) -> Iterator[Cluster]:
    if kubeconfig is not None:
        path = Path(kubeconfig).expanduser().resolve()
        if not path.is_file():
            raise SystemExit(f"demo: --kubeconfig {kubeconfig}: no such file")
        probe = Cluster(path, "", owned=False)
        url = kubectl(probe, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").strip()
        kubectl(probe, "version", "--request-timeout=10s")  # fails loudly when the cluster does not answer
        taken = kubectl(probe, "get", "ecsclouds.ecsnic.io", "default", "-o", "name", "--ignore-not-found", check=False)
        if taken.strip():
            raise SystemExit("demo: this cluster already has an EcsCloud named default; the demo would replace it")
        yield Cluster(path, url, owned=False)
        return
    say("building or reusing kube-apiserver + etcd (the first build takes a few minutes)")
    binaries = ensure_binaries()
    with open(workdir / "controlplane.log", "w") as cp_log, ControlPlane(binaries, log=cp_log) as cp:
        yield Cluster(cp.kubeconfig, cp.url, owned=True)


# How long the operator gets to detach the samples' NICs on Ctrl-C, and each later step: clean-up is bounded,
# so Ctrl-C always returns, and what it could not remove is said rather than waited for.
DETACH_WAIT_S = 60
STEP_WAIT_S = 20


def manifest_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def still_there(cluster: Cluster, manifest: Path) -> list[str]:
    """What of a manifest's objects the cluster still has, as `kind namespace/name`, `(Terminating)` when a
    finalizer (or, for a namespace, a namespace controller the cluster may not run) still holds it."""
    out = kubectl(cluster, "get", "-f", str(manifest), "-o", "json", "--ignore-not-found", timeout=STEP_WAIT_S)
    if not out.strip():
        return []
    found = json.loads(out)
    left = []
    for obj in found["items"] if found.get("kind") == "List" else [found]:
        meta = obj["metadata"]
        where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        holds = ""
        if meta.get("deletionTimestamp"):
            by = "a namespace controller" if obj["kind"] == "Namespace" else f"finalizers {meta.get('finalizers')}"
            holds = f" (Terminating: waits for {by})"
        left.append(f"{obj['kind']} {where}{holds}")
    return left


def clean_up(cluster: Cluster, examples: Path) -> list[str]:
    """On a cluster the demo does not own: delete the samples while the operator still runs (so their NICs
    are detached and finalizers released), then what else the demo created. The CRDs and the ecs-nic-system
    namespace stay: they may hold someone else's resources. Returns what is left behind.

    Every step is bounded. The samples are deleted by name, not with their manifest: that also holds the
    namespace, and waiting for a namespace waits for a namespace controller (a bare kube-apiserver has none,
    so it stays Terminating for ever); the namespace is deleted without waiting. The EcsCloud stays while a
    sample is still finalizing: without it the operator could never detach that NIC."""
    attachments = examples / "attachments.yaml"
    samples = [d["metadata"]["name"] for d in manifest_docs(attachments) if d["kind"] == "EcsNicAttachment"]
    say("removing the samples (the operator detaches their NICs first)")
    delete(cluster, "ecsnicattachments.ecsnic.io", "-n", SAMPLES_NS, *samples, wait=DETACH_WAIT_S)
    finalizing = [line for line in still_there(cluster, attachments) if not line.startswith("Namespace ")]
    delete(cluster, "-f", str(examples / "node.yaml"))
    if finalizing:
        say(f"kept EcsCloud default: the operator has not yet detached {', '.join(finalizing)}")
    else:
        delete(cluster, "-f", str(examples / "ecscloud.yaml"))
        delete(cluster, "namespace", SAMPLES_NS, "--wait=false")
    return [
        line for name in ("attachments", "node", "ecscloud") for line in still_there(cluster, examples / f"{name}.yaml")
    ]


def delete(cluster: Cluster, *what: str, wait: float = STEP_WAIT_S) -> None:
    """Waits at most `wait` s for the objects to go; whatever this fails to remove shows in still_there."""
    kubectl(
        cluster,
        "delete",
        *what,
        "--ignore-not-found",
        f"--timeout={wait:.0f}s",
        check=False,
        timeout=wait + STEP_WAIT_S,
    )


def report_clean_up(cluster: Cluster, examples: Path) -> None:
    try:
        left = clean_up(cluster, examples)
    except Exception as exc:  # the cluster stopped answering: say so, rather than hide it
        say(f"clean-up could not finish ({exc}); the cluster may still hold what deploy/examples/ declares")
        return
    if left:
        say("clean-up left behind: " + "; ".join(left))
    else:
        say("clean-up done: the samples, Node worker-3 and EcsCloud default are gone")


def main(keep_running: bool = True, kubeconfig: str | None = None) -> int:
    use_virtualenv_tools()
    root = repo_root()
    examples = root / "deploy" / "examples"
    seed_file = examples / "simulator-seed.yaml"
    seed = yaml.safe_load(seed_file.read_text())
    workdir = Path(tempfile.mkdtemp(prefix="ecsnic-demo-"))
    with cluster_for(kubeconfig, workdir) as cluster:
        say(f"{'control plane up' if cluster.owned else 'using the cluster'} at {cluster.url}")
        install_crds(cluster.env())  # served before the operator starts, so its first LIST logs no ERROR
        sim = SimulatorProcess(seed_file, log=open(workdir / "simulator.log", "w"))  # noqa: SIM115
        sim.start()
        say(f"cloud simulator up at {sim.url}")
        health_port = free_port()
        operator = OperatorProcess(
            cluster.kubeconfig, workdir / "operator.log", args=["--health-port", str(health_port)]
        )
        try:
            operator.start()
            say(
                f"operator running: metrics on http://127.0.0.1:{operator.metrics_port}/metrics, "
                f"health on http://127.0.0.1:{health_port}/healthz and /readyz"
            )
            kubectl(cluster, "apply", "-f", str(root / "deploy" / "manifests" / "00-namespace.yaml"))
            kubectl(cluster, "apply", "-f", "-", stdin=cloud_manifests(examples, sim.url, seed))
            kubectl(cluster, "apply", "-f", str(examples / "node.yaml"))
            kubectl(cluster, "apply", "-f", str(examples / "attachments.yaml"))
            say("applied deploy/examples/: an EcsCloud, a Node and four EcsNicAttachments")
            ok = wait_ready(cluster, 60)
            print(kubectl(cluster, "get", "ecsnic", "-n", SAMPLES_NS, "-o", "wide"), flush=True)
            if not ok:
                say(f"not every sample became Ready; see {workdir}/operator.log")
                return 1
            say("all samples Ready. Try, in another terminal:")
            k = user_command("kubectl")
            print(
                f"\n  export KUBECONFIG={cluster.kubeconfig} SIM={sim.url}\n"
                f"  {k} get ecsnic -n {SAMPLES_NS} -o wide\n"
                f"  {k} describe ecsnic -n {SAMPLES_NS} db-secondary\n"
                f"  {k} get events -n {SAMPLES_NS}\n"
                "  curl -s $SIM/_simulator/state | python3 -m json.tool\n"
                f"  curl -s http://127.0.0.1:{health_port}/readyz      # readiness, with the reasons when not ready\n"
                f"  curl -s http://127.0.0.1:{health_port}/healthz     # liveness\n"
                f"  {k} delete ecsnic -n {SAMPLES_NS} app-data     # detaches the NIC\n"
                "\n  Every condition reason, step by step with the simulator: docs/api.md\n"
                f"  logs: {workdir}\n",
                flush=True,
            )
            if keep_running:
                say("press Ctrl-C to stop everything")
                with contextlib.suppress(KeyboardInterrupt):
                    while operator.proc is not None and operator.proc.poll() is None:
                        time.sleep(1)
            return 0
        finally:
            try:
                if not cluster.owned:
                    report_clean_up(cluster, examples)
            finally:
                operator.stop()
                sim.stop()


if __name__ == "__main__":
    sys.exit(main())
