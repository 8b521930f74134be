"""Following an attached port: until the cloud reports it ACTIVE (fast polls, shared per server), then a
drift check once per resync period at the server's phase. A port gone from the server is drift: the
controller re-attaches it (attach.py, as a repair)."""

from __future__ import annotations

import logging
import time

from ecs_nic_operator import conditions, metrics
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.clouds import Cloud
from ecs_nic_operator.conditions import READY, Condition, Reason
from ecs_nic_operator.reconcile import ports as port_props
from ecs_nic_operator.reconcile.outcome import Event, Look, Outcome, Write
from ecs_nic_operator.reconcile.pacing import ACTIVE_SEEN_MAX_AGE, poll_delay, resync_delay
from ecs_nic_operator.reconcile.status import SYNCED_OK, ready_condition
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.reconcile.stuck import attach_stuck, stuck_since
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment, Key, status_from_port

log = logging.getLogger("ecs_nic_operator.controller")


async def follow(world: World, obj: Attachment, cloud: Cloud, skey: ServerKey) -> Outcome:
    assert cloud.client is not None and obj.port_id
    settings, memory = world.settings, world.memory
    polling = obj.port_state != "ACTIVE" or not any(c[0] == READY for c in obj.conditions_summary)
    # Following a DOWN port may reuse a list another attachment on the server just made; a drift check of a
    # Ready one also shares the per-server call of the same resync round. Half a period: fresh enough for a
    # drift check, yet each round's phase-aligned look (a period after the last) still lists, and after a
    # restart a server's attachments, queued far apart, share one list.
    max_age = settings.poll_min * 2 if polling else settings.resync_period / 2
    ports = world.views.cached(skey, ACTIVE_SEEN_MAX_AGE) if polling else {}
    port = ports.get(obj.port_id)
    if port is None or port.port_state != "ACTIVE":
        # A list that already showed this port ACTIVE answers the poll (only a listing after the attach can
        # show it ACTIVE), so a server's DOWN ports share one list however far apart they were polled.
        ports = await world.views.ports(cloud.client, skey, max_age)
        port = ports.get(obj.port_id)
    if port is None:
        # Not on the server any more: confirm with a fresh look before calling it drift.
        ports = await world.views.ports(cloud.client, skey, 0)
        port = ports.get(obj.port_id)
    if port is None:
        return drifted(world, obj, skey)
    wake = siblings(world, obj.key, skey, ports)
    memory.attempts.pop(obj.key, None)
    active = port.port_state == "ACTIVE"
    attached = memory.timed.pop(obj.key, None)
    if attached is not None:
        memory.activation.seen(active, time.monotonic() - attached)
    fields = status_from_port(skey[1], port)
    if active:
        memory.polls.pop(obj.key, None)
        memory.down_since.pop(obj.key, None)
        memory.forget_waiting(skey, obj.key)
        was = conditions.get(obj.status, READY)
        first = was is None or was.get("status") != "True"
        event: Event | None = (
            ("Normal", "Active", f"port {port.port_id} ({port.mac_addr}) is ACTIVE") if first else None
        )
        # -- issue 13: the port properties, converged at every look at an ACTIVE port (reconcile/ports.py)
        props = await port_props.converge(
            cloud.network, obj.spec.port_properties, port.port_id, cloud.spec.name, cloud.spec.api
        )
        if props.updated and not first:
            event = ("Normal", "PortUpdated", f"port {port.port_id}: {', '.join(props.updated)} updated in place")
        if props.synced is not None:
            event = ("Warning", props.synced.reason, props.synced.message)
        write = Write(obj, {**fields, **props.fields}, [ready_condition(skey, port), props.synced or SYNCED_OK], event)
        return Outcome(write=write, next=Look(resync_delay(settings, skey)), wake=wake)
    polls = memory.polls.get(obj.key, 0) + 1
    memory.polls[obj.key] = polls
    now = time.monotonic()
    since = memory.down_since.setdefault(
        obj.key, stuck_since(obj.status, Reason.ATTACH_STUCK, now, settings.stuck_after)
    )
    stuck = attach_stuck(
        skey[1],
        port.port_id,
        attached_at=since,
        now=now,
        port_state=port.port_state,
        after=settings.stuck_after,
        retry=settings.stuck_retry,
    )
    if stuck is not None:
        # Looked at slowly from now on: out of the waiting set, or a sibling's list would wake it at the fast
        # pace. Ready turns True at a later look once the cloud reports the port ACTIVE.
        memory.forget_waiting(skey, obj.key)
        wanted = [Condition(READY, False, stuck.reason, stuck.message), SYNCED_OK]
        write = Write(obj, fields, wanted, ("Warning", stuck.reason, stuck.message))
        return Outcome(write=write, next=Look(stuck.retry_in), wake=wake)
    memory.waiting[skey].add(obj.key)
    write = Write(obj, fields, [ready_condition(skey, port), SYNCED_OK])
    return Outcome(write=write, next=Look(poll_delay(settings, polls)), wake=wake)


def siblings(
    world: World, key: Key, skey: ServerKey, ports: dict[str, InterfaceAttachment]
) -> tuple[tuple[Key, Look], ...]:
    """Other attachments on this server waiting for ACTIVE whose port this list shows: those ACTIVE look now,
    while the list is fresh, instead of each listing the server again at its own poll time."""
    memory = world.memory
    wake: list[tuple[Key, Look]] = []
    for other in list(memory.waiting.get(skey, ())):
        obj = world.store.get(other)
        if obj is None:
            memory.forget_waiting(skey, other)
        elif (
            other != key
            and not obj.deleting
            and obj.port_id in ports
            and obj.status_server == skey[1]
            and obj.spec.cloud == skey[0]
        ):
            if ports[obj.port_id].port_state == "ACTIVE":
                wake.append((other, Look()))
            else:
                # Still DOWN: its own poll comes at the usual pace, not at the fallback of a run of attaches.
                wake.append((other, Look(poll_delay(world.settings, memory.polls.get(other, 0) + 1))))
    return tuple(wake)


def drifted(world: World, obj: Attachment, skey: ServerKey) -> Outcome:
    """The port is gone from the server. Status keeps naming it until the repair's answer replaces it: the
    repair's intent records the port it replaces, so a crash or a conflict in between is resumed by adoption
    against the repair's own baseline, never by a second attach against a stale one."""
    world.room.forget(skey)  # a NIC left the server without us: the count we keep is one short
    if obj.intent is not None and obj.intent.replaces == obj.port_id:
        return Outcome(drifted=True)  # a repair already under way (its answer was lost)
    message = f"port {obj.port_id} is no longer attached to server {skey[1]}; attaching again"
    log.info("%s/%s: %s", obj.namespace, obj.name, message)
    metrics.DRIFT_REPAIRS.inc()
    return Outcome(drifted=True, events=(("Warning", Reason.NIC_DETACHED, message),))
