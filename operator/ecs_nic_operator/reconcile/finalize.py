"""Deleting an attachment: detach its NIC (policy Delete) or leave it (Orphan), then release the finalizer.

An attach whose answer was lost is found first (adoption against its intent), so its NIC is detached too. A
DELETE the cloud accepted is confirmed by a list that no longer shows the port; one still listed long after
is DetachStuck (the DELETE is sent again at the slow pace). A 404 naming the server releases the finalizer only
once the cloud confirms the server is gone. Evidence this operator did not write detaches nothing.
"""

from __future__ import annotations

import time

from ecs_nic_operator import conditions
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.conditions import READY, Condition, Reason
from ecs_nic_operator.reconcile import prerequisites, v1
from ecs_nic_operator.reconcile.adopt import Ambiguous, adoptable
from ecs_nic_operator.reconcile.attach import ambiguity_said, ambiguous
from ecs_nic_operator.reconcile.failures import cloud_error
from ecs_nic_operator.reconcile.outcome import Event, Look, Outcome, Write
from ecs_nic_operator.reconcile.ownership import rivals
from ecs_nic_operator.reconcile.pacing import RESEND_DETACH_AFTER, poll_delay
from ecs_nic_operator.reconcile.status import SYNCED_OK
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.reconcile.stuck import Stuck, detach_stuck, stuck_since
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment


async def finalize(world: World, obj: Attachment) -> Outcome:
    if not obj.has_finalizer:
        return Outcome()
    if obj.spec.deletion_policy == "Orphan" or (not obj.port_id and obj.intent is None):
        if not obj.port_id:
            return Outcome(release=True)
        return Outcome(release=True, events=(("Normal", "Orphaned", f"port {obj.port_id} left attached (Orphan)"),))
    cloud = world.clouds.get(obj.spec.cloud)
    if (wait := prerequisites.settling(world, obj, cloud)) is not None:
        return wait
    if cloud is None or not cloud.ready or cloud.client is None:
        why = "does not exist" if cloud is None else f"is not Ready ({cloud.reason})"
        message = (
            f"cannot detach: EcsCloud {obj.spec.cloud!r} {why}. Fix the EcsCloud, or set "
            "spec.deletionPolicy: Orphan to delete this resource and leave the NIC attached"
        )
        return prerequisites.blocked(world, obj, Reason.DETACH_BLOCKED, message)
    signer = await prerequisites.signer(world, obj)
    if isinstance(signer, Outcome):
        return signer
    if (said := ambiguity_said(obj)) is not None:
        return said  # which NIC is ours could not be told: detach none, and hold the deletion (Orphan lets go)
    if obj.intent is not None and not obj.port_id and not signer.verify(obj):
        # Evidence we did not write proves no NIC is ours: detach nothing, and do not hold the deletion.
        message = (
            "the ecsnic.io/attach-intent annotation was not written by this operator for this object, so no "
            "NIC is detached: check the server for a NIC this resource may have attached and detach it by hand"
        )
        return Outcome(release=True, events=(("Warning", Reason.INTENT_UNVERIFIABLE, message),))
    server = obj.status_server or await prerequisites.server(world, obj, signer)
    if isinstance(server, Outcome):
        return server
    skey = (cloud.spec.name, server)
    client = cloud.client
    memory, settings = world.memory, world.settings
    done: Event
    try:
        port_id = obj.port_id
        if port_id is None and (sent := memory.detaching.get(obj.key)) is not None:
            port_id = sent[0]  # adopted and detached already: its leaving the list is what is awaited now
        if obj.job_id and port_id is None:  # -- issue 13: an attach job may still add a NIC
            job_nic = await v1.nic_before_delete(world, obj, client, skey)
            if isinstance(job_nic, Outcome):
                return job_nic
            port_id = job_nic
        if obj.intent is not None and (port_id is None or obj.intent.replaces == port_id):
            # An attach (or a drift repair) may have reached the cloud before a crash: find it first.
            await world.know_all()
            async with world.views.lock(skey):
                ports = await world.views.ports(client, skey, 0)
                if port_id is None or port_id not in ports:
                    found = adoptable(obj.spec, obj.intent, ports, *rivals(world.store, skey, obj.key, signer))
                    if isinstance(found, Ambiguous):
                        return ambiguous(world, obj, skey, found)
                    port_id = found.port_id if found else port_id
        if port_id is None:
            # -- issue 13: a lost v1 answer: its job may add the NIC after the finalizer went (a leak)
            lost = cloud.spec.api == "v1" and obj.intent is not None and not obj.job_id
            if lost and (waiting := v1.unanswered_delete(world, obj, skey)) is not None:
                return waiting
            return Outcome(release=True)
        detaching = memory.detaching.get(obj.key)
        if detaching is None and obj.job_id and port_id == obj.port_id:
            # -- issue 13: status names a v1 delete job (an attach job never sits beside a portId): a restart
            # met it, so the list is awaited as for a DELETE just answered, not a second job sent at once (the
            # DELETE goes again only if the port stays listed, as after a lost answer).
            detaching = memory.detaching[obj.key] = (port_id, time.monotonic(), False)
            memory.polls[obj.key] = 1
            started = stuck_since(obj.status, Reason.DETACH_STUCK, time.monotonic(), settings.stuck_after)
            memory.detach_since.setdefault(obj.key, (port_id, started))
        if detaching is None or detaching[0] != port_id:
            # Straight to the DELETE: a port already gone answers 404, which the next look confirms.
            delete_job = await send_detach(world, obj, client, skey, port_id)
            memory.polls[obj.key] = 0
            since = memory.detach_since.get(obj.key)
            if since is None or since[0] != port_id:
                started = stuck_since(obj.status, Reason.DETACH_STUCK, time.monotonic(), settings.stuck_after)
                memory.detach_since[obj.key] = (port_id, started)
            look = Look(max(settings.poll_min, memory.detach.delay))
            ready = conditions.get(obj.status, READY)
            if ready is not None and ready.get("reason") == Reason.DETACH_STUCK:
                return Outcome(next=look)  # still reported stuck: a DELETE sent again changes nothing visible
            message = f"detaching port {port_id} from server {server}"
            wanted = [Condition(READY, False, Reason.DETACHING, message), SYNCED_OK]
            # A NIC found (by its job or adopted) goes to status with this write: after a restart the port is
            # then known, not sought again by an intent whose NIC has already left the list.
            fields: dict[str, object] = {"serverId": server, "portId": port_id} if port_id != obj.port_id else {}
            if delete_job or obj.job_id:
                fields["jobId"] = delete_job  # the v1 delete job, in the write that says Detaching anyway
            write = Write(obj, fields or None, wanted, ("Normal", "Detaching", message))
            return Outcome(write=write, next=look)
        answered = detaching[1]
        # Any list sent after the DELETE was answered that no longer shows the port settles it, so a server's
        # detaching ports share one list; otherwise look now.
        seen = world.views.listed_since(skey, answered)
        if seen is None or port_id in seen:
            max_age = min(settings.poll_min / 2, time.monotonic() - answered)
            seen = await world.views.ports(client, skey, max_age)
        polls = memory.polls.get(obj.key, 0)
        if polls == 0:
            memory.detach.seen(port_id not in seen, time.monotonic() - answered)
        if port_id in seen:
            memory.polls[obj.key] = polls + 1
            stuck = detach_stuck(
                server,
                port_id,
                accepted_at=memory.detach_since.get(obj.key, (port_id, answered))[1],
                now=time.monotonic(),
                port_state=seen[port_id].port_state,
                after=settings.stuck_after,
                retry=settings.stuck_retry,
            )
            if stuck is not None:
                return await still_stuck(world, obj, client, skey, port_id, stuck)
            if detaching[2] or polls + 1 >= RESEND_DETACH_AFTER:
                # The DELETE answered 404 (a wrong endpoint or a gateway, not the port) or was lost, yet the
                # port is still listed: send it again rather than wait for a detach nobody started.
                del memory.detaching[obj.key]
            return Outcome(next=Look(poll_delay(settings, polls + 1)))
        world.views.drop(skey, port_id)
        if detaching[2]:
            world.room.forget(skey)  # it left before our DELETE (answered 404): not ours to count
        else:
            world.room.freed(skey)
        done = ("Normal", "Detached", f"port {port_id} detached from server {server}")
    except errors.CloudError as exc:
        if not (isinstance(exc, errors.NotFound) and exc.what == "server"):
            return cloud_error(world, obj, cloud, exc, client, detaching=True)
        # A 404 said "server". That is a guess from a body that may name nothing (a gateway's "API does not
        # exist", a wrong endpoint): ask for the server itself and release only when the cloud says it is gone.
        try:
            gone = await client.server_gone(server)
        except errors.CloudError as confirm:
            return cloud_error(world, obj, cloud, confirm, client, detaching=True)
        if not gone:
            return cloud_error(world, obj, cloud, exc, client, detaching=True)
        message = f"server {server} no longer exists, and its NICs with it: nothing is left to detach"
        done = ("Normal", "ServerGone", message)
    return Outcome(release=True, events=(done,))


async def send_detach(world: World, obj: Attachment, client: EcsClient, skey: ServerKey, port_id: str) -> str | None:
    """The DELETE, remembered with when it was answered and whether that answer was a 404; the v1 job's ID."""
    not_found = False
    job_id = None
    async with world.views.lock(skey):
        try:
            job_id = await v1.detach(client, obj, skey[1], port_id)  # issue 13: v1 deletes the port
        except errors.NotFound:
            not_found = True
    world.memory.detaching[obj.key] = (port_id, time.monotonic(), not_found)
    return job_id


async def still_stuck(
    world: World, obj: Attachment, client: EcsClient, skey: ServerKey, port_id: str, stuck: Stuck
) -> Outcome:
    """The cloud accepted the detach long ago and still lists the port: say so and what to do, and send the
    DELETE again at the slow pace (a repeat gets through once the cause is gone, e.g. the server stopped)."""
    last = world.memory.detaching[obj.key][1]
    if time.monotonic() - last >= world.settings.stuck_retry / 2:  # not an early look (an Event, a cloud change)
        await send_detach(world, obj, client, skey, port_id)
    wanted = [Condition(READY, False, stuck.reason, stuck.message), SYNCED_OK]
    return Outcome(write=Write(obj, None, wanted, ("Warning", stuck.reason, stuck.message)), next=Look(stuck.retry_in))
