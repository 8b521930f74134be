"""The operator's Kubernetes connection on the real stack: a connection that goes silent must not freeze the
operator's writes (issue 10, item 9). The operator talks to the API server through a TCP proxy that can freeze
every connection open at a moment (bytes held, no reset: what a dropped NAT entry looks like) while new
connections still pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A
from tests.integration.kube import Kube, condition, wait_for
from tests.integration.tcpproxy import TcpProxy


@pytest.fixture
def proxied_operator(
    kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, TcpProxy]]:
    """The shared operator steps aside; this one reaches the API server only through the proxy."""
    proxy = TcpProxy(kube.control_plane.api_port)
    doc = yaml.safe_load(kube.control_plane.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "kubeconfig-proxied"
    kubeconfig.write_text(yaml.safe_dump(doc))
    operator.stop()
    own = OperatorProcess(kubeconfig, tmp_path / "operator.log", args=["--resync-period", "4"])
    try:
        own.start()
        yield own, proxy
    finally:
        own.stop()
        proxy.close()
        operator.start()


def test_writes_resume_after_the_connections_they_use_go_silent(
    kube: Kube,
    simulator: SimulatorProcess,
    proxied_operator: tuple[OperatorProcess, TcpProxy],
    namespace: str,
    server: str,
) -> None:
    _, proxy = proxied_operator
    kube.create_attachment(namespace, "a", {"serverId": server, "netId": NET_A})

    def ready_port() -> str | None:
        obj = kube.get_attachment(namespace, "a")
        cond = condition(obj, "Ready")
        return str(obj["status"]["portId"]) if cond and cond["status"] == "True" else None

    first = wait_for(ready_port, timeout=40, what="Ready")
    # Every pooled connection (and the watch) goes silent. The drift check runs on a timer, not on a watch
    # event, so the repair's writes (intent, then status) must go out on those frozen connections first.
    proxy.freeze_open()
    simulator.force_detach(server, first)
    repaired = wait_for(
        lambda: (port := ready_port()) != first and port, timeout=150, interval=1.0, what="drift repaired"
    )
    assert [p["port_id"] for p in simulator.ports_of(server)] == [repaired]
