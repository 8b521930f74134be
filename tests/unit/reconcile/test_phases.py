"""The reconcile phases against a fake Kubernetes and a fake cloud: one table row per situation a user,
a crash or the cloud can create, with what must happen in the cloud and what the attachment must say."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from ecs_nic_operator.config import INTENT_ANNOTATION
from ecs_nic_operator.resources import Attachment
from tests.unit.reconcile.harness import NET, SERVER, Harness, claimed


def harness() -> Harness:
    h = Harness()
    h.cloud.servers[SERVER] = {}
    return h


async def attached(h: Harness, ns: str = "ns", name: str = "a", **spec: object) -> str:
    h.kube.create(ns, name, {"serverId": SERVER, "netId": NET, **spec})
    await h.settle()
    body = h.obj(ns, name)
    assert body is not None
    return str(body["status"]["portId"])


@dataclass
class Case:
    id: str
    setup: Callable[[Harness], Awaitable[None]]
    reason: str  # the Synced reason the attachment ends with ("" when it is gone)
    nics: Callable[[Harness], int]  # NICs on the server at the end


async def forged(h: Harness) -> None:
    h.cloud.attach_foreign(SERVER, NET)
    intent = '{"startedAt":"t","knownPorts":[],"server":"srv-1","sig":"00"}'
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET}, annotations={INTENT_ANNOTATION: intent})


async def garbled(h: Harness) -> None:
    h.cloud.attach_foreign(SERVER, NET)
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET}, annotations={INTENT_ANNOTATION: "{not json"})


async def copied(h: Harness) -> None:
    await attached(h, name="donor", netId="net-b")
    h.cloud.attach_foreign(SERVER, NET)
    donor = h.obj("ns", "donor")
    assert donor is not None
    intent = donor["metadata"]["annotations"][INTENT_ANNOTATION]
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": "net-b"}, annotations={INTENT_ANNOTATION: intent})


async def lost_reply(h: Harness) -> None:
    h.cloud.attach_foreign(SERVER, NET)
    h.cloud.lose_next_reply = 1
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})


async def intent_removed(h: Harness) -> None:
    h.cloud.lose_next_reply = 1
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.reconcile("ns")
    body = h.obj("ns", "a")
    assert body is not None
    body["metadata"]["annotations"].pop(INTENT_ANNOTATION)
    h.kube._commit(body)


CASES = [
    Case("garbled intent", garbled, "IntentUnverifiable", lambda h: 1),
    Case("hand-written intent", forged, "IntentUnverifiable", lambda h: 1),
    Case("intent copied from another object", copied, "IntentUnverifiable", lambda h: 2),
    Case("port owned in another namespace", claimed, "PortClaimed", lambda h: 1),
    Case("lost reply adopts its own NIC only", lost_reply, "ReconcileSuccess", lambda h: 2),
    Case("intent removed after the POST", intent_removed, "IntentUnverifiable", lambda h: 1),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_ownership_table(case: Case) -> None:
    h = harness()
    await case.setup(h)
    foreign = set(h.cloud.foreign)
    await h.settle()
    assert h.condition("ns", "a").get("reason") == case.reason
    assert len(h.cloud.servers[SERVER]) == case.nics(h)
    body = h.obj("ns", "a")
    assert body is not None
    port = (body.get("status") or {}).get("portId")
    assert port not in foreign
    # Deleting it never touches a NIC it does not own.
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is None
    assert foreign <= set(h.cloud.servers[SERVER])
    assert not set(h.cloud.detached) & foreign
    if case.id == "port owned in another namespace":
        assert "p-shared" in h.cloud.servers[SERVER]


async def test_unverifiable_intents_make_no_cloud_call() -> None:
    h = harness()
    await garbled(h)
    calls = sum(h.cloud.calls.values())
    await h.settle()
    assert sum(h.cloud.calls.values()) == calls


async def test_a_write_answered_gone_forgets_the_ghost() -> None:
    h = harness()
    await attached(h)
    h.hold_events = True  # the DELETED event never comes (a watch re-list)
    del h.kube.objects[("ns", "a")]
    h.controller.queue.schedule(("ns", "a"))
    h.cloud.servers[SERVER].clear()  # drift: the next look writes, which answers 404
    h.controller.views.forget_server(("default", SERVER))
    await h.reconcile("ns")
    assert ("ns", "a") not in h.controller.objects


async def test_a_list_does_not_revive_an_object_deleted_while_it_ran() -> None:
    h = harness()
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    stale, _ = await h.kube.list_attachments(())
    h.kube.delete("ns", "a")  # no finalizer yet: gone at once, DELETED delivered
    assert ("ns", "a") not in h.controller.objects

    async def late_list(namespaces: tuple[str, ...]) -> tuple[list[dict[str, object]], str]:
        return stale, "1"

    h.kube.list_attachments = late_list  # type: ignore[method-assign]
    await h.controller.world.know_all()
    assert ("ns", "a") not in h.controller.objects


async def test_a_late_refusal_from_rotated_out_credentials_does_not_mark_the_new_ones_rejected() -> None:
    h = harness()
    cloud = h.controller.clouds.get("default")
    assert cloud is not None
    old_client = object()
    h.controller.clouds.credentials_rejected("default", old_client, "401")  # type: ignore[arg-type]
    assert cloud.ready
    h.controller.clouds.credentials_rejected("default", None, "401")
    assert cloud.ready


async def test_a_node_attachment_whose_node_is_gone_still_detaches_what_its_intent_recorded() -> None:
    h = harness()
    h.kube.nodes["worker"] = f"openstack:///{SERVER}"
    h.cloud.lose_next_reply = 1
    h.kube.create("ns", "a", {"nodeName": "worker", "netId": NET})
    await h.reconcile("ns")  # intent + POST, answer lost
    assert len(h.cloud.servers[SERVER]) == 1
    del h.kube.nodes["worker"]
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is None
    assert h.cloud.servers[SERVER] == {}


async def test_server_gone_is_confirmed_before_the_finalizer_goes() -> None:
    h = harness()
    await attached(h)
    real_list = h.cloud.list

    async def unnamed_404(server_id: str) -> list[object]:
        from ecs_nic_operator.cloud import errors

        raise errors.NotFound("list", "HTTP 404", status=404, what="server")

    h.cloud.list = unnamed_404  # type: ignore[assignment,method-assign]
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is not None  # the server exists: a bare 404 releases nothing
    assert h.condition("ns", "a", "Ready").get("reason") == "DetachBlocked"
    h.cloud.list = real_list  # type: ignore[method-assign]
    del h.cloud.servers[SERVER]
    await h.settle()
    assert h.obj("ns", "a") is None  # confirmed gone: released


def test_status_portid_is_trusted_and_the_stale_intent_dropped() -> None:
    body = {
        "metadata": {"namespace": "ns", "name": "a", "uid": "u", "annotations": {INTENT_ANNOTATION: "{not json"}},
        "spec": {"serverId": SERVER, "netId": NET},
        "status": {"portId": "p1", "serverId": SERVER},
    }
    assert Attachment.from_body(body).intent is None


async def test_an_earlier_intent_of_the_same_object_copied_back_adopts_nothing() -> None:
    """Each failed attach records a new intent; one recorded while another attachment owned a port knows that
    port. Copying back the first intent (signed, same object, a smaller baseline) once the port is orphaned
    would make it look like the NIC this attachment's lost POST made."""
    from ecs_nic_operator.cloud import errors

    h = harness()
    real_attach = h.cloud.attach

    async def subnet_full(server_id: str, **kw: str | None) -> object:
        if kw.get("net_id") == NET:
            h.cloud.calls["attach"] += 1
            raise errors.SubnetExhausted("attach", "No more IP addresses available on network", status=409)
        return await real_attach(server_id, **kw)

    h.cloud.attach = subnet_full  # type: ignore[assignment,method-assign]
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.reconcile("ns")
    first = h.obj("ns", "a")["metadata"]["annotations"][INTENT_ANNOTATION]  # type: ignore[index]
    h.cloud.free_ports["p-x"] = NET
    h.kube.create("team-x", "x", {"serverId": SERVER, "portId": "p-x"})
    await h.settle(rounds=3)  # x attaches p-x; a's next intent knows it
    assert h.obj("team-x", "x")["status"]["portId"] == "p-x"  # type: ignore[index]
    h.kube.edit_spec("team-x", "x", deletionPolicy="Orphan")
    h.kube.delete("team-x", "x")
    await h.settle(rounds=3)
    assert h.obj("team-x", "x") is None and "p-x" in h.cloud.servers[SERVER]

    body = h.obj("ns", "a")
    assert body is not None and body["metadata"]["annotations"][INTENT_ANNOTATION] != first
    body["metadata"]["annotations"][INTENT_ANNOTATION] = first  # what a namespace user can write
    h.kube._commit(body)
    await h.settle(rounds=3)
    assert h.condition("ns", "a").get("reason") == "IntentUnverifiable"
    assert "earlier intent" in h.condition("ns", "a")["message"]
    assert "portId" not in (h.obj("ns", "a") or {}).get("status", {})
    h.kube.delete("ns", "a")
    await h.settle(rounds=3)
    assert "p-x" in h.cloud.servers[SERVER]  # never detached: it was never this attachment's


LEGACY = '{"startedAt":"2026-11-30T10:00:00Z","knownPorts":null}'  # the previous release's unsigned intent
LEGACY_STATUS = {
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Synced",
            "status": "False",
            "reason": "CloudUnavailable",
            "message": "timed out",
            "observedGeneration": 1,
        }
    ],
}


def upgraded_object(h: Harness, spec: dict[str, object], status: dict[str, object]) -> None:
    """What the previous release left behind when its attach answer was lost: finalizer, unsigned intent, and
    whatever status it had written."""
    from ecs_nic_operator.config import FINALIZER

    body = h.kube.create("ns", "a", spec, annotations={INTENT_ANNOTATION: LEGACY})
    body["metadata"]["finalizers"] = [FINALIZER]
    body["status"] = dict(status)
    h.kube._commit(body)


@pytest.mark.parametrize(
    ("spec", "status", "reason"),
    [
        ({"portId": "p-lost"}, LEGACY_STATUS, "ReconcileSuccess"),  # corroborated: adopts the port it names
        ({"portId": "p-lost"}, {}, "IntentUnverifiable"),  # the previous release never wrote status
        ({"netId": NET}, LEGACY_STATUS, "IntentUnverifiable"),  # a baseline nothing can corroborate
    ],
    ids=["portId, status written", "portId, no status", "netId"],
)
async def test_an_unsigned_intent_of_the_previous_release(
    spec: dict[str, object], status: dict[str, object], reason: str
) -> None:
    h = harness()
    lost = h.cloud.new_port(NET)
    h.cloud.servers[SERVER]["p-lost"] = dataclasses.replace(lost, port_id="p-lost")  # its POST had landed
    foreign = h.cloud.attach_foreign(SERVER, NET)
    upgraded_object(h, {"serverId": SERVER, **spec}, status)
    h.controller = h.new_controller()
    await h.settle()
    assert h.condition("ns", "a").get("reason") == reason
    body = h.obj("ns", "a")
    assert body is not None
    if reason == "IntentUnverifiable":
        assert "previous release" in h.condition("ns", "a")["message"]
        assert h.cloud.calls["attach"] == 0
        assert "portId" not in body["status"]
    else:
        assert body["status"]["portId"] == "p-lost" and h.cloud.calls["attach"] == 0
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is None
    assert foreign in h.cloud.servers[SERVER]
    assert ("p-lost" in h.cloud.servers[SERVER]) == (reason == "IntentUnverifiable")


async def test_a_relist_forgets_objects_deleted_while_the_watch_was_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf re-lists after a 410 without DELETED events: a LIST of our own drops the ghost and its claim."""
    import copy

    from ecs_nic_operator import controller as controller_module

    monkeypatch.setattr(controller_module, "SWEEP_AFTER", 0.0)
    h = harness()
    h.cloud.free_ports["p-shared"] = NET
    h.kube.create("team-a", "owner", {"serverId": SERVER, "portId": "p-shared"})
    await h.settle()
    h.kube.create("ns", "a", {"serverId": SERVER, "portId": "p-shared"})
    await h.settle()
    assert h.condition("ns", "a").get("reason") == "PortClaimed"
    h.hold_events = True  # the watch is down: the owner's deletion is never delivered
    del h.kube.objects[("team-a", "owner")]
    h.hold_events = False
    body = h.obj("ns", "a")
    assert body is not None
    h.controller.observe(copy.deepcopy(body), listed=True)  # kopf's re-list, from the top
    assert h.controller._sweep is not None
    await h.controller._sweep
    assert ("team-a", "owner") not in h.controller.objects
    await h.settle()
    assert h.condition("ns", "a").get("reason") == "ReconcileSuccess"  # the claim went with the ghost
