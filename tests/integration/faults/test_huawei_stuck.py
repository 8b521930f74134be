"""The real stack against a Huawei-flavoured cloud that runs out of NIC slots and leaves operations unfinished:
a full server gets NicLimitReached and no POST until a slot frees; a port that never comes up turns AttachStuck
and then Ready by itself; a detach the cloud accepts and never finishes turns DetachStuck, is sent again, and
the resource goes once the server is stopped. The bounds are short here (ECSNIC_STUCK_AFTER, 300 s by default).
"""

from __future__ import annotations

from tests.integration.faults.conftest import Stack
from tests.integration.kube import condition, wait_for

STUCK_AFTER = 3.0
STUCK_RETRY = 2.0
SPEC_RETRY = 4.0
OPERATOR_ENV = {
    "ECSNIC_STUCK_AFTER": str(STUCK_AFTER),
    "ECSNIC_STUCK_RETRY": str(STUCK_RETRY),
    "ECSNIC_SPEC_RETRY": str(SPEC_RETRY),
}
OPERATOR_ARGS = ["--resync-period", "300"]
SIM_BEHAVIOUR = {"dialect": "huawei"}

POST = "POST /v2.1/{project_id}/servers/{server_id}/os-interface"
DELETE = "DELETE /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}"
COUNT = "GET /v1/{project_id}/cloudservers/{server_id}/os-interface_extension"


def calls(stack: Stack, template: str) -> int:
    return int(stack.sim.state()["calls"].get(template, 0))


def test_a_full_server_gets_no_attach_until_a_slot_frees(stack: Stack) -> None:
    ns = stack.new_namespace("flt-full")
    server = stack.new_server(max_nics=1)
    stack.create(ns, "holder", stack.spec(server))
    stack.wait_ready(ns, "holder")
    posts = calls(stack, POST)
    stack.create(ns, "full", stack.spec(server))
    obj = stack.wait_reason(ns, "full", "NicLimitReached")
    synced = condition(obj, "Synced")
    assert synced is not None and (synced["status"], synced["reason"]) == ("False", "NicLimitReached")
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert server in ready["message"] and "detach a NIC" in ready["message"]
    # Retried at the spec pace, each time asking the cloud for the count again, and never POSTing.
    counted = calls(stack, COUNT)
    wait_for(lambda: calls(stack, COUNT) >= counted + 2, timeout=4 * SPEC_RETRY, what="two more count reads")
    assert calls(stack, POST) == posts
    assert ("Warning", "NicLimitReached") in {(t, r) for t, r, _ in stack.events(ns, "full")}

    stack.delete(ns, "holder")
    stack.wait_gone(ns, "holder")
    stack.wait_ready(ns, "full", timeout=4 * SPEC_RETRY)
    assert calls(stack, POST) == posts + 1
    assert len(stack.sim.ports_of(server)) == 1


def test_a_port_that_never_comes_up_turns_attach_stuck_then_ready_on_its_own(stack: Stack) -> None:
    ns = stack.new_namespace("flt-stuckup")
    server = stack.new_server()
    deletes = calls(stack, DELETE)
    stack.sim.behaviour(attachStuckRate=1)
    try:
        stack.create(ns, "up", stack.spec(server))
        stack.wait_reason(ns, "up", "PortNotActive", timeout=15)  # within the bound: only "waiting for ACTIVE"
        obj = stack.wait_reason(ns, "up", "AttachStuck", timeout=STUCK_AFTER + 15)
    finally:
        stack.sim.behaviour(attachStuckRate=0)
    ready, synced = condition(obj, "Ready"), condition(obj, "Synced")
    assert ready is not None and ready["status"] == "False" and "still DOWN" in ready["message"]
    assert synced is not None and (synced["status"], synced["reason"]) == ("True", "ReconcileSuccess")
    port = obj["status"]["portId"]
    assert stack.sim.state()["stuck"]["attach"] == [port]
    # A reboot-like change on the server brings the port up: Ready follows at the next slow look.
    stack.sim.set_server_state(server, "ACTIVE")
    stack.wait_ready(ns, "up", timeout=STUCK_RETRY * 1.1 + 10)
    assert [p["port_id"] for p in stack.sim.ports_of(server)] == [port]
    assert calls(stack, DELETE) == deletes  # reported, never undone


def test_a_detach_that_never_finishes_turns_detach_stuck_until_the_server_is_stopped(stack: Stack) -> None:
    ns = stack.new_namespace("flt-stuckdown")
    server = stack.new_server()
    stack.create(ns, "down", stack.spec(server))
    port = stack.wait_ready(ns, "down")["status"]["portId"]
    deletes = calls(stack, DELETE)
    stack.sim.behaviour(detachStuckRate=1)
    try:
        stack.delete(ns, "down")
        obj = stack.wait_reason(ns, "down", "DetachStuck", timeout=STUCK_AFTER + 20)
        ready = condition(obj, "Ready")
        assert ready is not None and port in ready["message"] and "port_state ACTIVE" in ready["message"]
        assert "stop the server" in ready["message"] and "deletionPolicy: Orphan" in ready["message"]
        assert stack.sim.state()["stuck"]["detach"] == [port]
        # The DELETE goes out again at the slow pace; the resource waits, holding its finalizer.
        wait_for(lambda: calls(stack, DELETE) >= deletes + 3, timeout=4 * STUCK_RETRY + 10, what="DELETE re-sent")
        assert stack.get(ns, "down") is not None
        assert ("Warning", "DetachStuck") in {(t, r) for t, r, _ in stack.events(ns, "down")}
        stack.sim.set_server_state(server, "stopped")
        stack.wait_gone(ns, "down", timeout=STUCK_RETRY * 1.1 + 15)
        assert stack.sim.ports_of(server) == []
    finally:
        stack.sim.behaviour(detachStuckRate=0)
        stack.sim.set_server_state(server, "ACTIVE")
