"""`ecs-nic-operator demo`: a local control plane, the simulator, the operator and the samples, all Ready."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, repo_root
from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def kubectl(cp: ControlPlane, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["kubectl", *args], env=cp.env(), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
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


def wait_ready(cp: ControlPlane, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(kubectl(cp, "get", "ecsnic", "-n", "demo", "-o", "json"))["items"]
        ready = [
            i
            for i in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
        ]
        if items and len(ready) == len(items):
            return True
        time.sleep(0.5)
    return False


def main(keep_running: bool = True) -> int:
    root = repo_root()
    examples = root / "deploy" / "examples"
    seed_file = examples / "simulator-seed.yaml"
    seed = yaml.safe_load(seed_file.read_text())
    workdir = Path(tempfile.mkdtemp(prefix="ecsnic-demo-"))
    say("building or reusing kube-apiserver + etcd (the first build takes a few minutes)")
    binaries = ensure_binaries()
    with open(workdir / "controlplane.log", "w") as cp_log, ControlPlane(binaries, log=cp_log) as cp:
        say(f"control plane up at {cp.url}")
        kubectl(cp, "apply", "-f", str(root / "crds"))
        kubectl(cp, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        sim = SimulatorProcess(seed_file, log=open(workdir / "simulator.log", "w"))  # noqa: SIM115
        sim.start()
        say(f"cloud simulator up at {sim.url}")
        operator = OperatorProcess(cp.kubeconfig, workdir / "operator.log")
        try:
            operator.start()
            say(f"operator running (metrics on http://127.0.0.1:{operator.metrics_port}/metrics)")
            kubectl(cp, "apply", "-f", str(root / "deploy" / "manifests" / "00-namespace.yaml"))
            kubectl(cp, "apply", "-f", "-", stdin=cloud_manifests(examples, sim.url, seed))
            kubectl(cp, "apply", "-f", str(examples / "node.yaml"))
            kubectl(cp, "apply", "-f", str(examples / "attachments.yaml"))
            say("applied deploy/examples/: an EcsCloud, a Node and four EcsNicAttachments")
            ok = wait_ready(cp, 60)
            print(kubectl(cp, "get", "ecsnic", "-n", "demo", "-o", "wide"), flush=True)
            if not ok:
                say(f"not every sample became Ready; see {workdir}/operator.log")
                return 1
            say("all samples Ready. Try, in another terminal:")
            print(
                f"\n  export KUBECONFIG={cp.kubeconfig}\n"
                "  kubectl get ecsnic -n demo\n"
                "  kubectl describe ecsnic -n demo db-secondary\n"
                "  kubectl get events -n demo\n"
                f"  curl -s {sim.url}/_simulator/state | python3 -m json.tool\n"
                "  kubectl delete ecsnic -n demo app-data     # detaches the NIC\n"
                f"\n  logs: {workdir}\n",
                flush=True,
            )
            if keep_running:
                say("press Ctrl-C to stop everything")
                with contextlib.suppress(KeyboardInterrupt):
                    while operator.proc is not None and operator.proc.poll() is None:
                        time.sleep(1)
            return 0
        finally:
            operator.stop()
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())
