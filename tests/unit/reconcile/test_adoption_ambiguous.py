"""Adoption after a lost answer never guesses between our NIC and a foreign one (issue 10, the model test's
failures 1-3 of hack/findings/model-2000x80-91d2ba5.log, shrunk by hand).

All three start the same way: a look lists the server and its intent write conflicts; another tool attaches a
NIC on the network; the next look records the intent with the baseline listed before that NIC came (lists of
up to 30 s serve as a baseline, reconcile/pacing.py), and its POST lands but the answer is lost. Two ports are
then new to the baseline. Before the fix adoption took the lowest ID, the foreign one: deleting the attachment
detached the foreign NIC and left ours (failures 2 and 3), and once its owner took the foreign NIC away, drift
repair attached a second NIC next to our unowned first (failure 1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.reconcile.adopt import Ambiguous, adoptable
from ecs_nic_operator.resources import AttachmentSpec, Intent
from tests.unit.reconcile.harness import NET, Harness

SERVER = "srv-1"


async def lost_answer_beside_a_foreign_nic(h: Harness) -> tuple[str, str]:
    """The shared start: (the foreign port, ours), both on the server, our attachment holding neither."""
    h.cloud.servers[SERVER] = {}
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    h.kube.conflict_next = 1
    await h.reconcile("ns")  # lists the (empty) server; the intent write conflicts
    foreign = h.cloud.attach_foreign(SERVER, NET)
    h.cloud.lose_next_reply = 1
    await h.reconcile("ns")  # the intent's baseline is that list; the POST lands, its answer is lost
    ours = set(h.cloud.servers[SERVER]) - {foreign}
    assert len(ours) == 1 and (h.obj("ns") or {}).get("status", {}).get("portId") is None
    return foreign, ours.pop()


def said(h: Harness, type_: str = "Synced") -> tuple[str, str]:
    cond = h.condition("ns", "a", type_)
    return cond.get("reason", ""), cond.get("message", "")


async def deleted(h: Harness) -> None:
    h.kube.delete("ns", "a")
    await h.settle()


async def foreign_taken_away(h: Harness) -> None:
    await h.settle()
    foreign = next(iter(h.cloud.foreign))
    del h.cloud.servers[SERVER][foreign]  # its owner detaches it
    await h.settle()


async def ours_detached_by_hand(h: Harness) -> None:
    await h.settle()
    for port in list(h.cloud.servers[SERVER]):
        if port not in h.cloud.foreign:
            del h.cloud.servers[SERVER][port]  # what the message tells the user to do with ours
    await h.settle()
    await deleted(h)


@dataclass
class Case:
    id: str
    then: Callable[[Harness], Awaitable[None]]
    present: Callable[[str, str], set[str]]  # (foreign, ours) -> the ports left on the server


CASES = [
    # failures 2 and 3: the deletion detached the foreign NIC and left ours
    Case("deleted", deleted, lambda foreign, ours: {foreign, ours}),
    # failure 1: adopted the foreign NIC, whose leaving then looked like drift: a second NIC of ours
    Case("foreign-nic-taken-away", foreign_taken_away, lambda foreign, ours: {ours}),
    # the refusal sticks: one candidate gone, the one left is still not known to be ours
    Case("ours-detached-by-hand-then-deleted", ours_detached_by_hand, lambda foreign, ours: {foreign}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_two_new_nics_after_a_lost_answer_adopt_attach_and_detach_nothing(
    case: Case, posted_events: list[tuple[str, str]]
) -> None:
    h = Harness()
    foreign, ours = await lost_answer_beside_a_foreign_nic(h)
    await case.then(h)
    assert set(h.cloud.servers[SERVER]) == case.present(foreign, ours)
    assert h.cloud.detached == []  # not a single DELETE of ours: nothing here is provably this attachment's
    assert h.cloud.calls["attach"] == 1  # and no second NIC
    reason, message = said(h)
    assert reason == "AdoptionAmbiguous"
    assert f"ports {', '.join(sorted((foreign, ours)))} on network {NET}" in message
    assert said(h, "Ready")[0] == "AdoptionAmbiguous"
    assert ("Warning", "AdoptionAmbiguous") in posted_events
    body = h.obj("ns")
    assert body is not None and "portId" not in body["status"]


async def test_an_ambiguous_deletion_lets_go_with_orphan_and_detaches_nothing() -> None:
    h = Harness()
    foreign, ours = await lost_answer_beside_a_foreign_nic(h)
    await deleted(h)
    assert h.obj("ns") is not None  # held: which NIC to detach would be a guess
    h.kube.edit_spec("ns", "a", deletionPolicy="Orphan")
    await h.settle()
    assert h.obj("ns") is None
    assert set(h.cloud.servers[SERVER]) == {foreign, ours} and h.cloud.detached == []


async def test_removing_the_intent_and_finalizer_after_an_ambiguity_attaches_anew() -> None:
    # The user detached ours by hand and follows the message's other way out: attach anew.
    h = Harness()
    foreign, ours = await lost_answer_beside_a_foreign_nic(h)
    await h.settle()
    del h.cloud.servers[SERVER][ours]
    body = h.obj("ns")
    assert body is not None
    body["metadata"]["annotations"].clear()
    body["metadata"]["finalizers"].clear()
    h.kube._commit(body)
    await h.settle()
    body = h.obj("ns")
    assert body is not None
    new = body["status"]["portId"]
    assert new not in (foreign, ours) and set(h.cloud.servers[SERVER]) == {foreign, new}
    assert said(h) == ("ReconcileSuccess", "the last reconcile with the cloud succeeded")


def port(port_id: str) -> InterfaceAttachment:
    return InterfaceAttachment(port_id, NET, "fa:16:3e:00:00:01", "ACTIVE", (FixedIp("sub", "10.0.0.9"),))


SPEC = AttachmentSpec("default", SERVER, None, NET, None, None, "Delete")


@pytest.mark.parametrize(
    ("on_server", "others_known", "expected"),
    [
        (["p0", "p1"], [], "p1"),  # one new port: ours, or (our POST made nothing) the documented limit
        (["p0", "p1", "p2"], [], Ambiguous(("p1", "p2"))),  # ours and a foreign one: never a guess
        (["p0", "p1", "p2"], [("p0", "p1")], "p1"),  # the other unanswered intent knew p1: p2 is its own
        (["p0"], [], None),  # nothing new: attach anew
    ],
)
def test_adoption_by_baseline_takes_only_a_single_new_port(
    on_server: list[str], others_known: list[tuple[str, ...]], expected: object
) -> None:
    ports = {p: port(p) for p in on_server}
    found = adoptable(SPEC, Intent("t", ("p0",), SERVER), ports, set(), others_known)
    assert (found.port_id if isinstance(found, InterfaceAttachment) else found) == expected


async def test_a_drift_repair_whose_answer_is_lost_beside_a_foreign_nic_stays_ambiguous() -> None:
    # The repair's intent keeps the port status names; its ambiguity must stick as the first attach's does.
    h = Harness()
    h.cloud.servers[SERVER] = {}
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})
    await h.settle()
    first = (h.obj("ns") or {})["status"]["portId"]
    del h.cloud.servers[SERVER][first]  # detached out of band: drift
    h.cloud.lose_next_reply = 1
    h.controller.views.forget_server(("default", SERVER))
    await h.reconcile("ns")  # the repair's POST lands, its answer is lost
    ours = (set(h.cloud.servers[SERVER])).pop()
    foreign = h.cloud.attach_foreign(SERVER, NET)  # another tool, before the next look
    await h.settle()
    assert said(h)[0] == "AdoptionAmbiguous" and said(h, "Ready")[0] == "AdoptionAmbiguous"
    del h.cloud.servers[SERVER][ours]  # the user detaches ours by hand, as told
    await deleted(h)
    assert set(h.cloud.servers[SERVER]) == {foreign} and h.cloud.detached == []
    assert h.obj("ns") is not None and said(h, "Ready")[0] == "AdoptionAmbiguous"
