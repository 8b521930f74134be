"""Deletion in every state: no stuck finalizer, except where letting go would leak a NIC (cloud unreachable with
deletionPolicy Delete) — and there the condition says why and what to do, and Orphan then lets it go.
"""

from __future__ import annotations

from tests.integration.faults.conftest import Stack
from tests.integration.kube import condition, wait_for

OPERATOR_ARGS = ["--resync-period", "300"]  # no drift repair racing the out-of-band changes below


def test_delete_while_attaching(stack: Stack) -> None:
    ns = stack.new_namespace("flt-del-attaching")
    server = stack.new_server()
    stack.sim.behaviour(replyDelay=2.0)
    try:
        stack.create(ns, "nic", stack.spec(server))
        wait_for(lambda: stack.sim.ports_of(server), timeout=20, what="the POST to reach the cloud")
        stack.delete(ns, "nic")  # the operator still awaits the cloud's answer
    finally:
        stack.sim.behaviour(replyDelay=0)
    stack.wait_gone(ns, "nic", timeout=30)
    assert stack.sim.ports_of(server) == []


def test_delete_while_paused(stack: Stack) -> None:
    ns = stack.new_namespace("flt-del-paused")
    server = stack.new_server()
    stack.create(ns, "attached", stack.spec(server))
    stack.wait_ready(ns, "attached")
    stack.kube.patch_attachment(ns, "attached", {"metadata": {"annotations": {"ecsnic.io/paused": "true"}}})
    stack.wait_reason(ns, "attached", "ReconcilePaused", type_="Synced")
    stack.create(ns, "never", stack.spec(server), annotations={"ecsnic.io/paused": "true"})
    stack.wait_reason(ns, "never", "ReconcilePaused", type_="Synced")
    stack.delete(ns, "attached")
    stack.delete(ns, "never")
    stack.wait_gone(ns, "never", timeout=30)  # never attached: no finalizer, nothing to wait for
    # Paused means no cloud calls, the detach included: the deletion waits and says how to go on.
    waiting = stack.wait_reason(ns, "attached", "ReconcilePaused", type_="Ready")
    ready = next(c for c in waiting["status"]["conditions"] if c["type"] == "Ready")
    assert "deletionPolicy: Orphan" in ready["message"]
    assert len(stack.sim.ports_of(server)) == 1
    # One way out (the other, unpausing, is in test_lifecycle): leave the NIC and let the resource go.
    stack.kube.patch_attachment(ns, "attached", {"spec": {"deletionPolicy": "Orphan"}})
    stack.wait_gone(ns, "attached", timeout=30)
    assert len(stack.sim.ports_of(server)) == 1


def test_delete_after_the_server_was_deleted(stack: Stack) -> None:
    ns = stack.new_namespace("flt-del-server")
    server = stack.new_server()
    stack.create(ns, "nic", stack.spec(server))
    stack.wait_ready(ns, "nic")
    stack.sim.delete_server(server)
    stack.delete(ns, "nic")
    stack.wait_gone(ns, "nic", timeout=30)


def test_delete_after_the_nic_is_already_gone(stack: Stack) -> None:
    ns = stack.new_namespace("flt-del-nic-gone")
    server = stack.new_server()
    stack.create(ns, "nic", stack.spec(server))
    obj = stack.wait_ready(ns, "nic")
    stack.sim.force_detach(server, obj["status"]["portId"])
    stack.delete(ns, "nic")
    stack.wait_gone(ns, "nic", timeout=30)
    assert stack.sim.ports_of(server) == []


def test_delete_with_the_cloud_unreachable(stack: Stack) -> None:
    ns = stack.new_namespace("flt-del-unreachable")
    server = stack.new_server()
    stack.create(ns, "orphan", stack.spec(server, deletionPolicy="Orphan"))
    stack.create(ns, "delete", stack.spec(server))
    stack.wait_ready(ns, "orphan")
    kept = stack.wait_ready(ns, "delete")["status"]["portId"]
    stack.sim.stop()
    try:
        # Orphan: nothing to do on the cloud, so nothing to wait for.
        stack.delete(ns, "orphan")
        stack.wait_gone(ns, "orphan", timeout=30)

        # Delete: letting go would leak the NIC; the finalizer stays and the condition says why and what to do.
        stack.delete(ns, "delete")
        obj = stack.wait_reason(ns, "delete", "DetachBlocked", timeout=60)
        ready = condition(obj, "Ready")
        assert ready is not None and ready["status"] == "False"
        assert "deletionPolicy: Orphan" in ready["message"], ready["message"]
        assert "ecsnic.io/finalizer" in obj["metadata"]["finalizers"]
        assert kept == obj["status"]["portId"]

        stack.kube.patch_attachment(ns, "delete", {"spec": {"deletionPolicy": "Orphan"}})
        stack.wait_gone(ns, "delete", timeout=30)
    finally:
        stack.sim.start()
