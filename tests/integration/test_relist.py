"""Ghost objects on the real stack (issue 10, item 8): an attachment deleted while the operator's watch was
down, whose resourceVersion the API server no longer has when the watch comes back, so kopf re-lists instead
of resuming, and no DELETED event ever arrives.

The API server here is our own, started with the watch cache off and a compaction every few seconds: a watch
resumed from a compacted revision is answered 410 Gone, as a real cluster answers one resumed after a long cut.
The operator reaches it through a TCP proxy that the test cuts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries, install_crds
from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_B, apply_cloud, cloud_ready
from tests.integration.kube import Kube, condition, wait_for
from tests.integration.tcpproxy import TcpProxy

COMPACTION = 2  # seconds between the API server's etcd compactions


@pytest.fixture
def compacting_kube(tmp_path: Path) -> Iterator[Kube]:
    args = ["--watch-cache=false", f"--etcd-compaction-interval={COMPACTION}s"]
    with open(tmp_path / "controlplane.log", "w") as log, ControlPlane(ensure_binaries(), log=log, api_args=args) as cp:
        install_crds(cp.env())
        yield Kube(config.new_client_from_config(config_file=str(cp.kubeconfig)), cp)


def test_an_attachment_deleted_while_the_watch_was_down_lets_go_of_its_port(
    compacting_kube: Kube, simulator: SimulatorProcess, tmp_path: Path
) -> None:
    kube = compacting_kube
    proxy = TcpProxy(kube.control_plane.api_port)
    doc = yaml.safe_load(kube.control_plane.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "kubeconfig-proxied"
    kubeconfig.write_text(yaml.safe_dump(doc))
    apply_cloud(kube, simulator.url)
    for ns in ("team-a", "team-b"):
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    server = str(uuid.uuid4())
    simulator.add_server(server, max_nics=4)
    port = simulator.add_port(NET_B)["port_id"]
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", args=["--spec-retry", "3"])
    operator.start()
    try:
        wait_for(lambda: cloud_ready(kube, "default"), timeout=30, what="EcsCloud Ready")
        kube.create_attachment("team-a", "owner", {"serverId": server, "portId": port, "deletionPolicy": "Orphan"})
        wait_for(lambda: (c := condition(kube.get_attachment("team-a", "owner"), "Ready")) and c["status"] == "True")
        kube.create_attachment("team-b", "b", {"serverId": server, "portId": port})
        wait_for(
            lambda: (c := condition(kube.get_attachment("team-b", "b"), "Synced")) and c["reason"] == "PortClaimed",
            what="b PortClaimed",
        )

        # The cut: new connections hang, open ones are held. The owner goes while the operator cannot see it
        # (its finalizer removed by hand first), then enough compactions pass for its revision to be gone.
        proxy.block()
        kube.patch_attachment("team-a", "owner", {"metadata": {"finalizers": None}})
        kube.delete_attachment("team-a", "owner")
        wait_for(lambda: not kube.attachment_exists("team-a", "owner"), what="owner deleted")
        for i in range(3):  # later revisions, so the compaction passes the deletion's
            kube.patch_attachment("team-b", "b", {"metadata": {"labels": {"tick": str(i)}}})
            time.sleep(COMPACTION * 1.5)
        proxy.close_open()  # the held watch stream is lost with its DELETED event
        proxy.unblock()

        b = wait_for(
            lambda: (
                (o := kube.get_attachment("team-b", "b"))
                and (c := condition(o, "Ready"))
                and c["status"] == "True"
                and o
            ),
            timeout=60,
            interval=0.5,
            what="b Ready on the port the deleted owner held",
        )
        assert b["status"]["portId"] == port
        assert [p["port_id"] for p in simulator.ports_of(server)] == [port]
    finally:
        operator.stop()
        proxy.close()
