"""Attaching (or adopting) a NIC, under the server's lock: the evidence of an earlier attach is checked first
(an unverifiable intent blocks, a port another attachment owns is PortClaimed), an interrupted attach is
adopted rather than repeated, a full server gets no POST, and the signed intent is recorded before the POST.

Kubernetes writes of an attach: 1) finalizer + intent (one guarded metadata patch, before the POST), 2) the
port as the cloud returned it. Unlike the other phases this one writes its answer itself, before it lets go
of the server's lock: another attachment's adoption on the same server must see the port claimed, or it
could take it for its own lost NIC.
"""

from __future__ import annotations

import asyncio
import logging
import time

import kopf

from ecs_nic_operator import conditions, metrics
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.clouds import Cloud
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.kube import Gone
from ecs_nic_operator.reconcile import v1
from ecs_nic_operator.reconcile.adopt import Ambiguous, adoptable
from ecs_nic_operator.reconcile.capacity import nic_limit
from ecs_nic_operator.reconcile.errors import classify
from ecs_nic_operator.reconcile.evidence import Signer, previous_release
from ecs_nic_operator.reconcile.outcome import NOW, Look, Outcome, Write
from ecs_nic_operator.reconcile.ownership import port_claimer, rivals
from ecs_nic_operator.reconcile.pacing import BASELINE_MAX_AGE, resync_delay, run_fallback
from ecs_nic_operator.reconcile.prerequisites import blocked
from ecs_nic_operator.reconcile.room import RECHECK_MAX_AGE, ROOM_MAX_AGE, cloud_id
from ecs_nic_operator.reconcile.status import SYNCED_OK, ready_condition
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment, Intent, status_from_port

log = logging.getLogger("ecs_nic_operator.controller")


async def attach(
    world: World, obj: Attachment, cloud: Cloud, skey: ServerKey, signer: Signer, repair: bool = False
) -> Outcome:
    client = cloud.client
    assert client is not None
    memory = world.memory
    async with world.views.lock(skey):
        began = time.monotonic()
        obj = world.store.get(obj.key) or obj  # what came while we waited for the lock
        if obj.deleting or obj.paused:
            return Outcome(next=NOW, label="deferred")
        if obj.port_id and obj.status_server == skey[1] and not repair:
            return Outcome(next=NOW)  # attached meanwhile: the next look follows it
        spec = obj.spec
        port: InterfaceAttachment | None = None
        adopted = False
        # Only an intent still in flight is kept on the object (see resources._live_intent): the first
        # attach's, or a repair's that replaces the port status still names.
        if obj.intent is not None and not signer.verify(obj):
            if (said := ambiguity_said(obj)) is not None:
                return said  # its intent was retired when the ambiguity was found: it stays what it said
            if previous_release(obj.intent):
                why = (
                    "the ecsnic.io/attach-intent annotation is unsigned, as the previous release wrote it, and "
                    "nothing in status corroborates it (docs/ownership.md, upgrades)"
                )
            elif obj.intent.sig and obj.intent.seq < obj.intent_seq:
                why = (
                    f"the ecsnic.io/attach-intent annotation is an earlier intent of this object (sequence "
                    f"{obj.intent.seq}; status.intentSeq says this operator has acted on {obj.intent_seq} since)"
                )
            else:
                why = "the ecsnic.io/attach-intent annotation was not written by this operator for this object"
                why += " (unreadable, edited, or copied)"
            return unverifiable(world, obj, skey[1], why)
        if obj.intent is None and obj.has_finalizer and not obj.port_id:
            why = "the ecsnic.io/attach-intent annotation that this operator wrote before attaching was removed"
            return unverifiable(world, obj, skey[1], why)
        if spec.port_id and (claimer := port_claimer(world.store, obj, spec.port_id, signer)) is not None:
            return port_claimed(world, obj, claimer)
        if obj.intent is not None:
            # An earlier attach may have reached the cloud without its answer being saved.
            await world.know_all()
            ports = await world.views.ports(client, skey, 0)
            found = adoptable(spec, obj.intent, ports, *rivals(world.store, skey, obj.key, signer))
            if isinstance(found, Ambiguous):
                return ambiguous(world, obj, skey, found)
            port, adopted = found, found is not None
            # -- issue 13: v1, no job ID and no NIC of it: its POST may still be adding one (reconcile/jobs.py)
            waiting = (
                v1.unanswered(world, obj, skey) if port is None and cloud.spec.api == "v1" and not repair else None
            )
            if waiting is not None:
                return waiting
        if port is None:
            baseline = bool(spec.net_id and not spec.fixed_ip)
            which = cloud_id(cloud.spec)
            if baseline and world.room.stale(which, skey, ROOM_MAX_AGE):
                # One call for the baseline and the count, where the cloud answers both (see room.list_counting)
                await world.views.ports(client, skey, 0, lambda: world.room.list_counting(client, which, skey))
            if (full := await room(world, obj, cloud, skey)) is not None:
                return full
            known: tuple[str, ...] | None = None
            if baseline:
                # The baseline need not be a list made just now (see pacing.BASELINE_MAX_AGE): a server's
                # queued attaches share one baseline list instead of one each.
                ports = await world.views.ports(client, skey, BASELINE_MAX_AGE)
                known = tuple(sorted(ports))
            seq = max(obj.intent_seq, obj.intent.seq if obj.intent is not None else 0) + 1
            replaces = obj.port_id if repair else None
            intent = signer.sign(obj, Intent(conditions.now(), known, skey[1], replaces, seq=seq))
            body = await world.kube.record_intent(
                obj.namespace, obj.name, obj.resource_version, obj.finalizers, intent.dump()
            )
            memory.signed[obj.key] = seq  # written to status with the answer, or with the error
            obj = world.status.keep(body)
            if obj.key not in world.store:
                raise Gone("deleted while its intent was being recorded")
            try:
                if cloud.spec.api == "v1":  # -- issue 13: a job, its ID recorded at once, then followed
                    return await v1.post(world, obj, client, skey)
                port = await client.attach(skey[1], net_id=spec.net_id, port_id=spec.port_id, fixed_ip=spec.fixed_ip)
            except errors.InUse:
                ports = await world.views.ports(client, skey, 0)
                found = adoptable(spec, intent, ports, *rivals(world.store, skey, obj.key, signer))
                if isinstance(found, Ambiguous):
                    return ambiguous(world, obj, skey, found)
                if found is None:
                    raise
                port, adopted = found, True
            except errors.CloudError as exc:
                # It may have reached the cloud (the intent makes the next try adopt), or the cloud says the
                # server is full: the count kept for it is not known to be right any more.
                if isinstance(exc, errors.QuotaExceeded) or getattr(exc, "may_have_taken_effect", False):
                    world.room.forget(skey)
                raise
            else:
                world.room.took(skey)
            world.views.note(skey, port)
        memory.polls[obj.key] = 0
        memory.waiting[skey].add(obj.key)
        memory.down_since[obj.key] = time.monotonic()  # AttachStuck's bound starts at the attach
        verb = "adopted" if adopted else ("re-attached" if repair else "attached")
        message = f"port {port.port_id} {verb} on server {skey[1]} ({port.port_state})"
        log.info("%s/%s: %s", obj.namespace, obj.name, message)
        metrics.ATTACHES.labels("adopted" if adopted else "created").inc()
        reason = "DriftRepaired" if repair else ("Adopted" if adopted else "Attached")
        fields = status_from_port(skey[1], port)
        acted_on = max(memory.signed.pop(obj.key, 0), obj.intent.seq if obj.intent is not None else 0)
        if acted_on > obj.intent_seq:
            fields["intentSeq"] = acted_on  # from now on, any earlier intent of this object proves nothing
        try:
            await world.status.write(
                obj,
                fields,
                [ready_condition(skey, port), SYNCED_OK],
                event=("Normal", reason, message),
            )
        except Gone:
            await roll_back(world, obj, client, skey, port)
            raise
    memory.attempts.pop(obj.key, None)
    return after_attach(world, obj, skey, active=port.port_state == "ACTIVE", took=time.monotonic() - began)


def after_attach(world: World, obj: Attachment, skey: ServerKey, active: bool, took: float) -> Outcome:
    """The pacing of a wave of attaches (reconcile/pacing.py): the next new attachment on this server goes
    now, out of turn; the last of the run polls for all (its list wakes the others, see follow.siblings)."""
    settings, memory = world.settings, world.memory
    more = world.runs.take_next(skey, lambda k: k in world.store and k not in memory.seen)
    wake = ((more, Look(front=True)),) if more is not None else ()
    if active:
        return Outcome(next=Look(resync_delay(settings, skey)), wake=wake)
    first_look = max(settings.poll_min, memory.activation.delay)
    if more is not None:  # the fallback, should the run stop
        return Outcome(next=Look(run_fallback(first_look, 1 + world.runs.left(skey), took)), wake=wake)
    memory.timed[obj.key] = time.monotonic()
    return Outcome(next=Look(first_look))


def unverifiable(world: World, obj: Attachment, server: str, why: str) -> Outcome:
    """The evidence of an earlier attach is not ours: it proves nothing, so adopt nothing, attach nothing."""
    message = (
        f"{why}, so it proves nothing: no NIC is adopted and none is attached. Check server {server} for a "
        "NIC this resource attached; then remove the ecsnic.io/attach-intent annotation and the "
        "ecsnic.io/finalizer finalizer to attach anew (or delete the resource)"
    )
    return blocked(world, obj, Reason.INTENT_UNVERIFIABLE, message, retry=world.settings.spec_retry)


def ambiguous(world: World, obj: Attachment, skey: ServerKey, found: Ambiguous) -> Outcome:
    """Several ports on our network are new to the intent's baseline: one may be what our lost POST made, the
    others another tool's. Taking one would be a guess, so take none, attach none, and detach none on deletion.

    The intent is retired in the same status write (status.intentSeq past it), so the refusal sticks: were one
    candidate to go (its owner detaching it, or the user detaching ours by hand), the one left would otherwise
    look like the single new port, ours to adopt and later to detach."""
    ports = ", ".join(found.candidates)
    net = obj.spec.net_id
    if obj.deleting:
        todo = (
            "Detach by hand the one this resource attached, if it is still there, then set spec.deletionPolicy: "
            "Orphan to let this resource go (nothing is detached until then)"
        )
    else:
        todo = (
            "Find the one this resource attached (the cloud console shows when each was created): detach it by "
            "hand, or claim it with an EcsNicAttachment that names it by spec.portId; then delete this resource "
            "with spec.deletionPolicy: Orphan, or remove its ecsnic.io/attach-intent annotation and "
            "ecsnic.io/finalizer finalizer to attach anew"
        )
    message = (
        f"cannot tell which NIC is this resource's: ports {ports} on network {net} of server {skey[1]} are all new "
        f"since its attach started, whose answer was lost, so none is adopted, attached or detached. {todo}"
    )
    log.warning("%s/%s: %s", obj.namespace, obj.name, message)
    assert obj.intent is not None
    retired = max(obj.intent.seq, obj.intent_seq, world.memory.signed.pop(obj.key, 0)) + 1
    # Ready False even for a drift repair: the port status still names is gone, and no other is known ours.
    wanted = [Condition(READY, False, Reason.ADOPTION_AMBIGUOUS, message)]
    wanted.append(Condition(SYNCED, False, Reason.ADOPTION_AMBIGUOUS, message))
    event = ("Warning", Reason.ADOPTION_AMBIGUOUS, message)
    # No look of its own: only what the user does (an edit, the deletion) can change the verdict.
    return Outcome(write=Write(obj, {"intentSeq": retired}, wanted, event), label="deferred")


def ambiguity_said(obj: Attachment) -> Outcome | None:
    """An attachment whose intent was retired by an AdoptionAmbiguous verdict: that verdict, as it was written
    (the candidates are named in its message), looked at again only when the user changes something."""
    intent = obj.intent
    if intent is None or not intent.sig or intent.seq >= obj.intent_seq:
        return None
    if obj.port_id and intent.replaces != obj.port_id:
        return None  # a drift repair's intent names the port status still shows; any other is spent
    said = next(
        (c for c in obj.status.get("conditions") or [] if c.get("type") == SYNCED),
        None,
    )
    if said is None or said.get("reason") != Reason.ADOPTION_AMBIGUOUS:
        return None
    message = str(said.get("message") or "")
    wanted = [Condition(kind, False, Reason.ADOPTION_AMBIGUOUS, message) for kind in (READY, SYNCED)]
    return Outcome(write=Write(obj, None, wanted), label="deferred")


def port_claimed(world: World, obj: Attachment, claimer: Attachment) -> Outcome:
    message = (
        f"port {obj.spec.port_id} belongs to EcsNicAttachment {claimer.namespace}/{claimer.name}: this resource "
        "neither attaches, adopts nor detaches it. Delete one of the two; this one goes on once the other lets go"
    )
    return blocked(world, obj, Reason.PORT_CLAIMED, message, retry=world.settings.spec_retry)


async def room(world: World, obj: Attachment, cloud: Cloud, skey: ServerKey) -> Outcome | None:
    """Just before a POST: a server the cloud says is full gets none (NicLimitReached), only a later look.
    Called with the server's lock held, so no attach of ours is in flight on it (each is counted in)."""
    assert cloud.client is not None
    spec, settings = cloud.spec, world.settings
    which = cloud_id(spec)
    free = await world.room.free(cloud.client, which, skey, ROOM_MAX_AGE)
    if nic_limit(skey[1], free, 0, settings.spec_retry) is None:
        return None
    # Blocking on a count we kept would miss a NIC detached by hand since: only the cloud's own word blocks.
    free = await world.room.free(cloud.client, which, skey, min(RECHECK_MAX_AGE, settings.spec_retry / 2))
    full = nic_limit(skey[1], free, 0, settings.spec_retry)
    if full is None:
        return None
    log.info("%s/%s: %s", obj.namespace, obj.name, full.message)
    wanted = [Condition(READY, False, full.reason, full.message), Condition(SYNCED, False, full.reason, full.message)]
    return Outcome(
        write=Write(obj, None, wanted, ("Warning", full.reason, full.message)),
        next=Look(full.retry_in),
        label="deferred",
    )


async def roll_back(
    world: World, obj: Attachment, client: EcsClient, skey: ServerKey, port: InterfaceAttachment
) -> None:
    """The resource vanished while its attach was under way, so nobody owns the NIC: take it off again.

    Our intent patch adds the finalizer before the POST, yet the API server can still delete the object
    without waiting for it: a DELETE that read the object before the patch (no finalizers then) removes
    it after the patch landed (kubernetes/kubernetes#77988). Called with the server's lock held.
    """
    what = f"{obj.namespace}/{obj.name}"
    if obj.spec.deletion_policy == "Orphan":
        log.warning("%s was deleted while port %s was being attached; left attached (Orphan)", what, port.port_id)
        return
    log.warning("%s was deleted while port %s was being attached; detaching it", what, port.port_id)
    for attempt in range(1, 8):
        try:
            await client.detach(skey[1], port.port_id)
        except errors.NotFound:
            pass
        except errors.RetryableError as exc:
            await asyncio.sleep(classify(exc, world.settings, attempt).delay)
            continue
        except errors.CloudError as exc:
            log.error("%s: cannot detach port %s, which no resource owns: %s", what, port.port_id, exc)
            break
        world.views.drop(skey, port.port_id)
        world.room.freed(skey)
        metrics.ROLLED_BACK.inc()
        return
    message = f"port {port.port_id} on server {skey[1]} was left attached: detach it by hand"
    log.error("%s was deleted while its port was being attached; %s", what, message)
    kopf.warn(obj.ref(), reason=Reason.DETACH_BLOCKED, message=message)  # type: ignore[arg-type]
