"""Each reconcile phase on its own: for one situation (a row), the Outcome it returns (what the user is told,
which Events, whether the finalizer goes, when to look next, which siblings wake) and the cloud calls it made.

The phases run against the fake Kubernetes and the fake cloud of harness.py; nothing is scheduled here: the
outcome is what the controller would apply.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ecs_nic_operator.clouds import PENDING
from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.config import INTENT_ANNOTATION
from ecs_nic_operator.reconcile import prerequisites
from ecs_nic_operator.reconcile.attach import attach
from ecs_nic_operator.reconcile.evidence import KEY_SECRET
from ecs_nic_operator.reconcile.finalize import finalize
from ecs_nic_operator.reconcile.follow import follow
from ecs_nic_operator.reconcile.outcome import Outcome
from ecs_nic_operator.reconcile.pacing import RUN_FALLBACK, poll_delay
from ecs_nic_operator.resources import Attachment
from tests.unit.reconcile.harness import NET, SERVER, SETTINGS, Harness, claimed

SKEY = ("default", SERVER)
Phase = Callable[[Harness, Attachment], Awaitable[Outcome]]


def harness() -> Harness:
    h = Harness()
    h.cloud.servers[SERVER] = {}
    return h


def current(h: Harness, name: str = "a") -> Attachment:
    obj = h.controller.store.get(("ns", name))
    assert obj is not None
    return obj


async def attached(h: Harness, name: str = "a", **spec: object) -> None:
    h.kube.create("ns", name, {"serverId": SERVER, "netId": NET, **spec})
    await h.settle()


# -- the phases, as the controller calls them --------------------------------------------------------


async def cloud_phase(h: Harness, obj: Attachment) -> Outcome:
    found = await prerequisites.cloud(h.controller.world, obj)
    assert isinstance(found, Outcome), "the cloud was usable"
    return found


async def signer_phase(h: Harness, obj: Attachment) -> Outcome:
    found = await prerequisites.signer(h.controller.world, obj)
    assert isinstance(found, Outcome), "the key was usable"
    return found


async def server_phase(h: Harness, obj: Attachment) -> Outcome:
    signer = await h.controller.world.evidence.load()
    found = await prerequisites.server(h.controller.world, obj, signer)
    assert isinstance(found, Outcome), f"resolved {found}"
    return found


async def attach_phase(h: Harness, obj: Attachment) -> Outcome:
    cloud = h.controller.clouds.get("default")
    assert cloud is not None
    signer = await h.controller.world.evidence.load()
    h.controller.runs.discard(obj)  # as the controller does at an object's first look
    return await attach(h.controller.world, obj, cloud, SKEY, signer)


async def follow_phase(h: Harness, obj: Attachment) -> Outcome:
    cloud = h.controller.clouds.get("default")
    assert cloud is not None
    h.controller.views.forget_server(SKEY)  # time has passed since the last list
    return await follow(h.controller.world, obj, cloud, SKEY)


async def finalize_phase(h: Harness, obj: Attachment) -> Outcome:
    return await finalize(h.controller.world, obj)


# -- situations ------------------------------------------------------------------------------------------


async def new(h: Harness) -> None:
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET})


async def no_cloud(h: Harness) -> None:
    await new(h)
    del h.controller.clouds._clouds["default"]


async def no_cloud_just_started(h: Harness) -> None:
    await no_cloud(h)
    h.controller.world.started_at = time.monotonic()


def cloud_state(ready: bool, reason: str) -> Callable[[Harness], Awaitable[None]]:
    async def setup(h: Harness) -> None:
        await new(h)
        cloud = h.controller.clouds.get("default")
        assert cloud is not None
        cloud.ready, cloud.reason = ready, reason

    return setup


async def bad_key(h: Harness) -> None:
    h.kube.secrets[("ops", KEY_SECRET)] = {"key": "short"}
    await new(h)


async def node_gone(h: Harness) -> None:
    h.kube.create("ns", "a", {"nodeName": "worker", "netId": NET})


async def node_without_provider_id(h: Harness) -> None:
    h.kube.nodes["worker"] = ""
    await node_gone(h)


async def new_down(h: Harness) -> None:
    h.cloud.new_port_state = "DOWN"  # not ACTIVE at once: the first look comes soon
    await new(h)


async def second_on_server(h: Harness) -> None:
    await new_down(h)
    h.kube.create("ns", "b", {"serverId": SERVER, "netId": NET})


async def garbled(h: Harness) -> None:
    h.kube.create("ns", "a", {"serverId": SERVER, "netId": NET}, annotations={INTENT_ANNOTATION: "{not json"})


async def full(h: Harness) -> None:
    h.cloud.max_nics = 1
    h.cloud.attach_foreign(SERVER, NET)
    await new(h)


async def down(h: Harness) -> None:
    h.cloud.new_port_state = "DOWN"
    await attached(h)


async def comes_up(h: Harness) -> None:
    await down(h)
    for port in list(h.cloud.servers[SERVER].values()):
        h.cloud.servers[SERVER][port.port_id] = dataclasses.replace(port, port_state="ACTIVE")


async def siblings_come_up(h: Harness) -> None:
    h.cloud.new_port_state = "DOWN"
    await attached(h, "b")
    await comes_up(h)


async def detached_by_hand(h: Harness) -> None:
    await attached(h)
    h.cloud.servers[SERVER].clear()


async def deleted(h: Harness, **spec: object) -> None:
    await attached(h, **spec)
    h.kube.delete("ns", "a")


async def deleted_orphan(h: Harness) -> None:
    await deleted(h, deletionPolicy="Orphan")


async def detach_answered(h: Harness) -> None:
    await deleted(h)
    await h.reconcile("ns")  # the DELETE; the fake cloud detaches at once


@dataclass
class Row:
    id: str
    setup: Callable[[Harness], Awaitable[None]]
    phase: Phase
    ready: str | None = None  # the Ready reason written (None: no write, or no Ready in it)
    synced: str | None = None  # the Synced reason written
    look: tuple[float, float] | None = None  # bounds of the next look (None: no look)
    label: str = "ok"
    events: tuple[str, ...] = ()  # reasons of the Events besides the write's
    event: str | None = None  # reason of the write's Event
    release: bool = False
    drifted: bool = False
    wake: tuple[str, ...] = ()  # names woken
    calls: dict[str, int] = field(default_factory=dict)  # cloud calls the phase made


def around(seconds: float) -> tuple[float, float]:
    return (0.9 * seconds, 1.1 * seconds)


DEP, SPEC = around(SETTINGS.dependency_retry), around(SETTINGS.spec_retry)
PERIOD = SETTINGS.resync_period
FIRST = max(SETTINGS.poll_min, 1.0)  # the first look after an attach, before any was learnt

ROWS = [
    Row("no EcsCloud", no_cloud, cloud_phase, "CloudNotFound", "CloudNotFound", DEP, "deferred", event="CloudNotFound"),
    Row("no EcsCloud yet, just started", no_cloud_just_started, cloud_phase, look=(2.0, 2.0), label="deferred"),
    Row("EcsCloud's first check running", cloud_state(False, PENDING), cloud_phase, look=(2.0, 2.0), label="deferred"),
    Row(
        "credentials rejected",
        cloud_state(False, Reason.CREDENTIALS_REJECTED),
        cloud_phase,
        "CredentialsRejected",
        "CredentialsRejected",
        SPEC,
        "deferred",
        event="CredentialsRejected",
    ),
    Row(
        "EcsCloud not Ready",
        cloud_state(False, "EndpointInvalid"),
        cloud_phase,
        "CloudNotReady",
        "CloudNotReady",
        DEP,
        "deferred",
        event="CloudNotReady",
    ),
    Row(
        "intent key unusable",
        bad_key,
        signer_phase,
        "IntentKeyUnavailable",
        "IntentKeyUnavailable",
        DEP,
        "deferred",
        event="IntentKeyUnavailable",
    ),
    Row("Node gone", node_gone, server_phase, "NodeNotFound", "NodeNotFound", DEP, "deferred", event="NodeNotFound"),
    Row(
        "Node without providerID",
        node_without_provider_id,
        server_phase,
        "NodeHasNoProviderID",
        "NodeHasNoProviderID",
        DEP,
        "deferred",
        event="NodeHasNoProviderID",
    ),
    # The attach writes its answer itself (under the server's lock): the outcome only paces what follows.
    Row(
        "attach",
        new_down,
        attach_phase,
        look=(FIRST, FIRST),
        calls={"list_with_room": 1, "list": 1, "attachable_nics": 1, "attach": 1},
    ),
    Row(
        "attach, another new one on the server",
        second_on_server,
        attach_phase,
        look=(FIRST + RUN_FALLBACK, FIRST + RUN_FALLBACK + 0.5),  # plus b's attach, as long as a's took
        wake=("b",),
        calls={"list_with_room": 1, "list": 1, "attachable_nics": 1, "attach": 1},
    ),
    Row(
        "garbled intent",
        garbled,
        attach_phase,
        "IntentUnverifiable",
        "IntentUnverifiable",
        SPEC,
        "deferred",
        event="IntentUnverifiable",
    ),
    Row(
        "port owned in another namespace",
        claimed,
        attach_phase,
        "PortClaimed",
        "PortClaimed",
        SPEC,
        "deferred",
        event="PortClaimed",
    ),
    Row(
        "server full",
        full,
        attach_phase,
        "NicLimitReached",
        "NicLimitReached",
        SPEC,
        "deferred",
        event="NicLimitReached",
        calls={"list_with_room": 1},
    ),
    Row(
        "follow, port DOWN",
        down,
        follow_phase,
        "PortNotActive",
        "ReconcileSuccess",
        (poll_delay(SETTINGS, 1),) * 2,
        calls={"list": 1},
    ),
    Row(
        "follow, port ACTIVE",
        comes_up,
        follow_phase,
        "Active",
        "ReconcileSuccess",
        (0.1 * PERIOD, 1.1 * PERIOD),
        event="Active",
        calls={"list": 1},
    ),
    Row(
        "follow wakes a sibling whose port is up",
        siblings_come_up,
        follow_phase,
        "Active",
        "ReconcileSuccess",
        (0.1 * PERIOD, 1.1 * PERIOD),
        event="Active",
        wake=("b",),
        calls={"list": 1},
    ),
    Row(
        "follow, port detached by hand",
        detached_by_hand,
        follow_phase,
        drifted=True,
        events=("NicDetachedOutOfBand",),
        calls={"list": 2},
    ),
    Row("delete, Orphan", deleted_orphan, finalize_phase, events=("Orphaned",), release=True),
    Row(
        "delete, first look",
        deleted,
        finalize_phase,
        "Detaching",
        "ReconcileSuccess",
        (FIRST, FIRST),
        event="Detaching",
        calls={"detach": 1},
    ),
    Row("delete, detach done", detach_answered, finalize_phase, events=("Detached",), release=True, calls={"list": 1}),
]


def reason(outcome: Outcome, type_: str) -> str | None:
    if outcome.write is None:
        return None
    return next((c.reason for c in outcome.write.conditions if c.type == type_), None)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_phase_outcome(row: Row) -> None:
    h = harness()
    await row.setup(h)
    before = dict(h.cloud.calls)
    outcome = await row.phase(h, current(h))
    calls = {op: n - before.get(op, 0) for op, n in h.cloud.calls.items() if n != before.get(op, 0)}
    assert (reason(outcome, "Ready"), reason(outcome, "Synced")) == (row.ready, row.synced)
    event = outcome.write.event if outcome.write is not None else None
    assert (event[1] if event else None) == row.event
    assert tuple(e[1] for e in outcome.events) == row.events
    if row.look is None:
        assert outcome.next is None
    else:
        assert outcome.next is not None
        assert row.look[0] - 1e-6 <= outcome.next.after <= row.look[1] + 1e-6
    assert (outcome.label, outcome.release, outcome.drifted) == (row.label, row.release, row.drifted)
    assert tuple(key[1] for key, _ in outcome.wake) == row.wake
    assert calls == row.calls


async def test_a_phase_never_schedules() -> None:
    """Phases only return when to look: the queue is the controller's (one scheduling site)."""
    h = harness()
    await new(h)
    h.controller.queue.forget(("ns", "a"))
    await attach_phase(h, current(h))
    assert h.controller.queue.due_in(("ns", "a")) is None
