"""The phases' steps for Huawei's v1 API (issue 13): refuse IPv6 on v2.1, start an attach job and record its ID,
follow a recorded job, refuse a second POST after a lost answer, wait for an attach job before a delete, and
the v1 detach. Each returns an Outcome (or what the caller goes on with); the rules are in reconcile/jobs.py."""

from __future__ import annotations

import logging
import time

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.clouds import Cloud
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.reconcile import jobs
from ecs_nic_operator.reconcile.errors import classify
from ecs_nic_operator.reconcile.outcome import NOW, Look, Outcome, Write
from ecs_nic_operator.reconcile.pacing import poll_delay
from ecs_nic_operator.reconcile.prerequisites import blocked
from ecs_nic_operator.reconcile.status import SYNCED_OK, ready_condition
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment, status_from_port

log = logging.getLogger("ecs_nic_operator.v1")


def refuse_unsupported(world: World, obj: Attachment, cloud: Cloud) -> Outcome | None:
    """IPv6 needs the v1 API: on v2.1 say so, with no cloud call."""
    if obj.spec.ipv6 and cloud.spec.api != "v1":
        message = (
            f"spec.ipv6 needs an EcsCloud with spec.api: v1 (Huawei's batch NIC API); EcsCloud {cloud.spec.name!r} "
            f"uses {cloud.spec.api}, whose os-interface call cannot ask for IPv6. No call was made: set spec.api: v1 "
            "on the EcsCloud, or recreate the attachment without spec.ipv6"
        )
        return blocked(world, obj, Reason.UNSUPPORTED_BY_API, message, retry=world.settings.spec_retry)
    return None


async def post(world: World, obj: Attachment, client: EcsClient, skey: ServerKey) -> Outcome:
    """The v1 POST, the intent already recorded, the server's lock held: the job ID is written at once (before
    the lock goes, like attach's answer), then the job is followed."""
    assert obj.intent is not None
    try:
        job_id = await jobs.start_attach(client, skey[1], obj.spec)
    except errors.CloudError as exc:
        if not getattr(exc, "may_have_taken_effect", False) and not isinstance(exc, errors.InUse):
            world.v1.ended[obj.key] = obj.intent.started_at  # refused before anything was made
        raise
    world.v1.ended.pop(obj.key, None)
    world.v1.polls[obj.key] = 0
    world.room.took(skey)
    log.info("%s/%s: v1 attach job %s started on server %s", obj.namespace, obj.name, job_id, skey[1])
    fields: dict[str, object] = {"serverId": skey[1], "jobId": job_id}
    acted_on = max(world.memory.signed.pop(obj.key, 0), obj.intent.seq)
    if acted_on > obj.intent_seq:
        fields["intentSeq"] = acted_on  # as attach.py does: any earlier intent of this object proves nothing now
    # No Event: the job ID is in status, and "Attached" follows.
    await world.status.write(obj, fields, jobs.running(job_id, skey[1]))
    return Outcome(next=Look(max(world.settings.poll_min, 0.5)), label="deferred")


async def follow_job(world: World, obj: Attachment, cloud: Cloud, skey: ServerKey) -> Outcome | None:
    """A recorded attach job: wait while it runs; its NIC in status when it succeeded; on FAIL the error is
    reported and the job forgotten (the next look may POST again); None when the cloud no longer knows the job
    (it ended long ago: the caller looks for its NIC by the intent, and may POST)."""
    client = cloud.client
    assert client is not None and obj.job_id is not None
    found = await jobs.look(client, obj.job_id)
    if found.state == "running":
        polls = world.v1.poll(obj.key)
        write = Write(obj, None, jobs.running(obj.job_id, skey[1]))
        return Outcome(write=write, next=Look(poll_delay(world.settings, polls)), label="deferred")
    world.v1.polls.pop(obj.key, None)
    if found.state == "failed":
        assert found.error is not None
        if obj.intent is not None:
            world.v1.ended[obj.key] = obj.intent.started_at
        world.room.forget(skey)
        verdict = classify(found.error, world.settings, world.memory.bump(obj.key))
        wanted = [
            Condition(READY, False, verdict.reason, verdict.message),
            Condition(SYNCED, False, verdict.reason, verdict.message),
        ]
        write = Write(obj, {"jobId": None}, wanted, ("Warning", verdict.reason, verdict.message))
        return Outcome(write=write, next=Look(verdict.delay), label="deferred")
    if found.state == "gone":
        if obj.intent is not None:  # it ended long ago: a NIC it made is listed now, or there is none
            world.v1.ended[obj.key] = obj.intent.started_at
        message = f"v1 job {obj.job_id} is no longer known to the cloud; looking for its NIC"
        await world.status.write(obj, {"jobId": None}, [Condition(SYNCED, True, Reason.RECONCILE_SUCCESS, message)])
        return None
    assert found.nic_id is not None
    ports = await world.views.ports(client, skey, 0)
    port = ports.get(found.nic_id)
    if port is None:
        # SUCCESS names the NIC, the list does not show it yet: look again soon, the job is still the evidence.
        return Outcome(next=Look(world.settings.poll_min), label="deferred")
    world.views.note(skey, port)
    message = f"port {port.port_id} attached on server {skey[1]} by v1 job {obj.job_id} ({port.port_state})"
    log.info("%s/%s: %s", obj.namespace, obj.name, message)
    world.memory.attempts.pop(obj.key, None)
    world.memory.down_since[obj.key] = time.monotonic()
    write = Write(
        obj,
        {**status_from_port(skey[1], port), "jobId": None},
        [ready_condition(skey, port), SYNCED_OK],
        ("Normal", "Attached", message),
    )
    return Outcome(write=write, next=NOW if port.port_state == "ACTIVE" else Look(world.settings.poll_min))


def unanswered(world: World, obj: Attachment, skey: ServerKey) -> Outcome | None:
    """v1, an intent, no job ID, no NIC of it on the server: go on (None) only when its POST is known to have
    made nothing; otherwise wait (listing) up to the bound, then block."""
    assert obj.intent is not None
    if world.v1.ended.get(obj.key) == obj.intent.started_at:
        return None
    settings = world.settings
    polls = world.v1.poll(obj.key)
    verdict = jobs.unanswered(
        obj.intent, skey[1], settings.stuck_after, poll_delay(settings, polls), settings.stuck_retry
    )
    event = ("Warning", Reason.ATTACH_UNCONFIRMED, verdict.conditions[0].message)
    return Outcome(write=Write(obj, None, verdict.conditions, event), next=Look(verdict.retry_in), label="deferred")


def unanswered_delete(world: World, obj: Attachment, skey: ServerKey) -> Outcome | None:
    """Deleting on v1, an intent with no job ID and no NIC of it on the server: release (None) only when its
    POST is known to have made nothing; otherwise wait for the NIC (jobs.unanswered_delete)."""
    assert obj.intent is not None
    if world.v1.ended.get(obj.key) == obj.intent.started_at:
        return None
    settings = world.settings
    verdict = jobs.unanswered_delete(
        obj.intent, skey[1], settings.stuck_after, poll_delay(settings, world.v1.poll(obj.key)), settings.stuck_retry
    )
    event = ("Warning", Reason.ATTACH_UNCONFIRMED, verdict.conditions[0].message)
    return Outcome(write=Write(obj, None, verdict.conditions, event), next=Look(verdict.retry_in), label="deferred")


async def nic_before_delete(world: World, obj: Attachment, client: EcsClient, skey: ServerKey) -> Outcome | str | None:
    """Deleting while an attach job is recorded: its NIC must not appear after the finalizer is gone, so wait for
    the job to end; then the NIC it made (None: it made none)."""
    assert obj.job_id is not None
    found = await jobs.look(client, obj.job_id)
    if found.state == "running":
        polls = world.v1.poll(obj.key)
        write = Write(obj, None, jobs.running(obj.job_id, skey[1], detaching=True))
        return Outcome(write=write, next=Look(poll_delay(world.settings, polls)), label="deferred")
    return found.nic_id


async def detach(client: EcsClient, obj: Attachment, server: str, port_id: str) -> str | None:
    """v1 deletes the port with the NIC. A port the spec named by portId is not ours to delete: it is detached
    through v2.1's os-interface DELETE, so it survives as it does on v2.1 (docs/operations.md). Returns the
    v1 delete job's ID (None on v2.1)."""
    if getattr(client, "api", "v2.1") == "v1" and not obj.spec.port_id:
        job_id = await client.delete_nics(server, [port_id])
        log.info("%s/%s: v1 delete job %s for port %s", obj.namespace, obj.name, job_id, port_id)
        return job_id
    await client.detach(server, port_id)
    return None
