"""The stuck and capacity policies as the reconcile phases use them: what the attachment says, which cloud calls
go out (none that the policy forbids, no extra one per attachment), and the slow pace afterwards."""

from __future__ import annotations

import dataclasses

import pytest

from ecs_nic_operator.config import INTENT_ANNOTATION
from tests.unit.reconcile.harness import NET, SETTINGS, Harness

SERVER = "srv-1"
QUICK = dataclasses.replace(SETTINGS, stuck_after=1e-9, stuck_retry=1e-9)  # every later look is past the bound


def harness(max_nics: int | None = None, settings: object = SETTINGS) -> Harness:
    h = Harness()
    h.cloud.servers[SERVER] = {}
    h.cloud.max_nics = max_nics
    h.controller.world.settings = settings  # type: ignore[assignment]
    return h


async def next_look(h: Harness, name: str = "a") -> float:
    """Reconcile once more, from an empty queue: when does that reconcile ask to look again?"""
    h.controller.queue.forget(("ns", name))
    await h.reconcile("ns", name)
    due = h.controller.queue.due_in(("ns", name))
    assert due is not None
    return due


def reason(h: Harness, type_: str, name: str = "a") -> tuple[str, str]:
    cond = h.condition("ns", name, type_)
    return cond.get("status", ""), cond.get("reason", "")


async def test_a_full_server_gets_no_post_and_no_intent_then_attaches_once_room_appears() -> None:
    h = harness(max_nics=1)
    foreign = h.cloud.attach_foreign(SERVER, NET)
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    assert reason(h, "Ready") == ("False", "NicLimitReached")
    assert reason(h, "Synced") == ("False", "NicLimitReached")
    assert "detach a NIC" in h.condition("ns", "a", "Ready")["message"]
    assert h.cloud.calls["attach"] == 0
    body = h.obj("ns", "a")
    assert body is not None and INTENT_ANNOTATION not in body["metadata"]["annotations"]
    assert 0.85 * SETTINGS.spec_retry <= await next_look(h) <= 1.15 * SETTINGS.spec_retry
    assert h.cloud.calls["attach"] == 0
    # Someone detaches the foreign NIC: the next look reads the count again and attaches.
    del h.cloud.servers[SERVER][foreign]
    h.controller.room._free.clear()  # the retry comes after the recheck age; here it comes at once
    await h.settle()
    assert reason(h, "Ready") == ("True", "Active")
    assert h.cloud.calls["attach"] == 1


async def test_a_wave_on_one_server_reads_the_count_once_and_counts_its_own_attaches() -> None:
    h = harness(max_nics=3)
    for i in range(4):
        h.kube.create("ns", f"a{i}", {"serverId": SERVER, "netId": NET})
    await h.settle()
    reasons = sorted(reason(h, "Ready", f"a{i}")[1] for i in range(4))
    assert reasons == ["Active", "Active", "Active", "NicLimitReached"]
    assert h.cloud.calls["attach"] == 3
    assert count_reads(h) == 1
    assert h.cloud.calls["list"] == 0  # the one v1 list was also the wave's baseline


async def test_a_detach_of_ours_gives_the_slot_back_without_asking() -> None:
    h = harness(max_nics=2)
    h.kube.create("ns", "keep", {"serverId": SERVER, "netId": NET})  # the server stays one of ours
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is None and len(h.cloud.servers[SERVER]) == 1
    h.kube.create("ns", "b", {"serverId": SERVER, "netId": NET})
    await h.settle()
    assert reason(h, "Ready", "b") == ("True", "Active")
    assert count_reads(h) == 1


async def test_a_cloud_without_the_count_is_asked_once_for_all_its_servers() -> None:
    h = harness(max_nics=None)
    h.cloud.servers["srv-2"] = {}
    for i, server in enumerate([SERVER, "srv-2", SERVER, "srv-2"]):
        h.kube.create("ns", f"a{i}", {"serverId": server, "netId": NET})
    await h.settle()
    assert all(reason(h, "Ready", f"a{i}") == ("True", "Active") for i in range(4))
    assert count_reads(h) == 1


async def test_adoption_after_a_lost_reply_is_never_stopped_by_the_count() -> None:
    # The lost attach took the only slot: a count check on the adoption path would block the resource's own NIC.
    h = harness(max_nics=1)
    h.cloud.lose_next_reply = 1
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    assert reason(h, "Ready") == ("True", "Active")
    assert h.cloud.calls["attach"] == 1 and len(h.cloud.servers[SERVER]) == 1


async def test_a_port_that_stays_down_turns_attach_stuck_then_ready_when_it_comes_up() -> None:
    h = harness(settings=QUICK)
    h.cloud.new_port_state = "DOWN"
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    assert reason(h, "Ready") == ("False", "AttachStuck")
    assert reason(h, "Synced") == ("True", "ReconcileSuccess")
    assert "still DOWN" in h.condition("ns", "a", "Ready")["message"]
    assert await next_look(h) <= 1.1 * QUICK.stuck_retry
    writes = h.kube.writes["attachment_status"]
    for _ in range(3):  # later looks find nothing new: no status write
        await h.reconcile("ns")
    assert h.kube.writes["attachment_status"] == writes
    port = next(iter(h.cloud.servers[SERVER]))
    h.cloud.servers[SERVER][port] = dataclasses.replace(h.cloud.servers[SERVER][port], port_state="ACTIVE")
    h.controller.views.forget_server(("default", SERVER))
    await h.reconcile("ns")
    assert reason(h, "Ready") == ("True", "Active")
    assert h.cloud.calls["detach"] == 0  # a stuck attach is reported, never undone


async def test_a_down_port_within_the_bound_is_only_port_not_active() -> None:
    h = harness()
    h.cloud.new_port_state = "DOWN"
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    assert reason(h, "Ready") == ("False", "PortNotActive")


@pytest.mark.parametrize("restart", [False, True])
async def test_a_detach_that_never_finishes_turns_detach_stuck_is_resent_and_releases_when_the_nic_goes(
    restart: bool, posted_events: list[tuple[str, str]]
) -> None:
    h = harness(settings=QUICK)
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    h.cloud.detach_sticks = True
    h.kube.delete("ns", "a")
    await h.settle()
    assert h.obj("ns", "a") is not None
    assert reason(h, "Ready") == ("False", "DetachStuck")
    assert reason(h, "Synced") == ("True", "ReconcileSuccess")
    message = h.condition("ns", "a", "Ready")["message"]
    assert "stop the server" in message and "deletionPolicy: Orphan" in message and "port_state ACTIVE" in message
    sent = h.cloud.calls["detach"]
    if restart:
        h.new_controller().world.settings = QUICK
    for _ in range(3):
        await h.reconcile("ns")
    assert h.cloud.calls["detach"] > sent  # sent again at the policy's pace (here: every look)
    assert reason(h, "Ready") == ("False", "DetachStuck")  # a restart does not turn it back to Detaching
    assert posted_events.count(("Warning", "DetachStuck")) == 1
    h.cloud.detach_sticks = False  # e.g. the server was stopped
    await h.settle()
    assert h.obj("ns", "a") is None and h.cloud.servers[SERVER] == {}


def count_reads(h: Harness) -> int:
    """Reads of a server's free-NIC count: alone, or with the NIC list where one call answers both."""
    return h.cloud.calls["attachable_nics"] + h.cloud.calls["list_with_room"]
