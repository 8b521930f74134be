"""`ecs-nic-operator demo --kubeconfig`: the simulator and the operator against an existing cluster (here a
fresh kube-apiserver + etcd, standing in for kind), the samples Ready, health endpoints answering as printed, no
ERROR in the operator's log at start (the CRDs' storage is waited for), and the samples removed on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, install_crds


@pytest.fixture
def existing_cluster(tmp_path: Path) -> Iterator[ControlPlane]:
    """A cluster of each test's own: what one demo run leaves (a namespace a bare kube-apiserver never finishes
    deleting, or everything, when a run is cut short) must not decide the next test."""
    with open(tmp_path / "controlplane.log", "w") as log, ControlPlane(ensure_binaries(), log=log) as cp:
        yield cp


def kubectl(cp: ControlPlane, *args: str) -> str:
    return subprocess.run(["kubectl", *args], env=cp.env(), capture_output=True, text=True, check=True).stdout


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed within {timeout} s:\n{''.join(seen)}")


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_demo_on_an_existing_cluster(existing_cluster: ControlPlane, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecs_nic_operator.cli", "demo", "--kubeconfig", str(existing_cluster.kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # so a run cut short takes its operator and simulator with it
    )
    try:
        out = read_until(proc, "press Ctrl-C", timeout=180)
        assert "using the cluster at https://127.0.0.1:" in out and "all samples Ready" in out
        assert re.search(r"^app-data .* True +True +Active ", out, re.MULTILINE), out
        health = re.search(r"curl -s (http://127\.0\.0\.1:\d+)/readyz", out)
        assert health, out
        status, body = get(f"{health.group(1)}/readyz")
        assert status == 200 and body["ready"] is True, body
        status, body = get(f"{health.group(1)}/healthz")
        assert status == 200 and body["alive"] is True, body
        logs = Path(re.search(r"logs: (\S+)", out).group(1))  # type: ignore[union-attr]
        errors = [line for line in (logs / "operator.log").read_text().splitlines() if " ERROR " in line]
        assert errors == [], errors
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Nothing of the demo's is left in a cluster it does not own: NICs detached, finalizers released.
    assert kubectl(existing_cluster, "get", "ecsnic", "-A", "-o", "name").strip() == ""
    assert kubectl(existing_cluster, "get", "ecsclouds", "-o", "name").strip() == ""
    assert "worker-3" not in kubectl(existing_cluster, "get", "nodes", "-o", "name")
    # But for the namespace, which only a namespace controller (this bare kube-apiserver has none) finishes
    # deleting: the demo says so instead of waiting for it.
    assert "demo: clean-up left behind: Namespace demo (Terminating: waits for a namespace controller)\n" in rest
    assert "Terminating" in kubectl(existing_cluster, "get", "namespace", "demo", "-o", "jsonpath={.status.phase}")


def test_demo_refuses_a_cluster_whose_default_ecscloud_is_someone_elses(existing_cluster: ControlPlane) -> None:
    install_crds(existing_cluster.env())
    cloud = (
        '{"apiVersion": "ecsnic.io/v1alpha1", "kind": "EcsCloud", "metadata": {"name": "default"}, "spec": '
        '{"endpoint": "https://ecs.example.com", "projectId": "p", "credentials": {"type": "Token", '
        '"secretRef": {"namespace": "x", "name": "y"}}}}'
    )
    subprocess.run(["kubectl", "apply", "-f", "-"], input=cloud, env=existing_cluster.env(), text=True, check=True)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ecs_nic_operator.cli", "demo", "--kubeconfig", str(existing_cluster.kubeconfig)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0 and "already has an EcsCloud named default" in result.stderr + result.stdout
        assert "https://ecs.example.com" in kubectl(existing_cluster, "get", "ecscloud", "default", "-o", "json")
    finally:
        kubectl(existing_cluster, "delete", "ecscloud", "default")
