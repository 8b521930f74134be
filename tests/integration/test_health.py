"""/healthz and /readyz follow the watches: ready after start, 503 while the API server is down, ready again
after it returns, and alive throughout (restarting would not bring an API server back).

A control plane of its own: stopping the session's API server would disturb every other test.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, free_port, repo_root
from ecs_nic_operator.devenv.processes import OperatorProcess
from tests.integration.conftest import NET_A
from tests.integration.kube import Kube, wait_for


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    log_path = tmp_path_factory.mktemp("health-controlplane") / "controlplane.log"
    with open(log_path, "w") as log, ControlPlane(ensure_binaries(), log=log) as cp:
        kube = Kube(config.new_client_from_config(config_file=str(cp.kubeconfig)), cp)
        kube.kubectl("apply", "-f", str(repo_root() / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield kube


def test_readiness_follows_the_api_server_and_liveness_holds(plane: Kube, tmp_path: Path) -> None:
    plane.core.create_namespace({"metadata": {"name": "health"}})
    plane.create_attachment(
        "health",
        "existing",
        {"serverId": "7b7e1f5c-0000-4000-8000-000000000001", "netId": NET_A},
    )
    port = free_port()
    op = OperatorProcess(
        plane.control_plane.kubeconfig,
        tmp_path / "operator.log",
        args=["--health-port", str(port)],
        env={"ECSNIC_HEALTH_INTERVAL": "0.5"},
    )
    op.start()
    base = f"http://127.0.0.1:{port}"
    try:
        # Ready once the watch delivered the object the API server lists.
        body = wait_for(lambda: (lambda r: r[1] if r[0] == 200 else None)(get(f"{base}/readyz")), timeout=20)
        assert body["objectsSeen"]["ecsnicattachments"] == 1
        assert get(f"{base}/healthz")[0] == 200

        cp = plane.control_plane
        apiserver = cp._procs.pop()  # stop kube-apiserver alone; etcd keeps the data
        apiserver.kill()  # an outage, not a graceful shutdown (which waits for open watches)
        apiserver.wait(30)
        stopped = time.monotonic()
        _status, body = wait_for(
            lambda: (lambda r: r if r[0] == 503 else None)(get(f"{base}/readyz")), timeout=10, what="readyz 503"
        )
        assert time.monotonic() - stopped < 10
        assert any("API server" in p for p in body["problems"]), body
        assert get(f"{base}/healthz")[0] == 200  # an outage is not a reason to restart the operator

        cp._start_apiserver()
        cp._wait_ready(60)
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, timeout=30, what="readyz back to 200")
        # The watch resumed: a change made after the outage reaches the operator (and readiness holds).
        plane.patch_attachment("health", "existing", {"metadata": {"labels": {"after": "outage"}}})
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, timeout=10)
        assert get(f"{base}/healthz")[0] == 200
    finally:
        op.stop()
