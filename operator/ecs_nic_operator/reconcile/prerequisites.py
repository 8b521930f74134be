"""Before any cloud call: the attachment is not paused, its EcsCloud exists, is Ready and allows its namespace,
the intent key is at hand, and the server is known. Each check returns what it found, or the Outcome that
tells the user what is missing (Synced=False with the reason) and when to look again."""

from __future__ import annotations

import random
import time

from ecs_nic_operator import conditions
from ecs_nic_operator.clouds import PENDING, Cloud
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.kube import Gone
from ecs_nic_operator.reconcile.evidence import KeyUnavailable, Signer
from ecs_nic_operator.reconcile.outcome import Look, Outcome, Write
from ecs_nic_operator.reconcile.pacing import resumed_ready
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment

# After a start, how long a missing EcsCloud is taken for "not listed yet" rather than "does not exist".
STARTUP_GRACE = 10.0

# EcsCloud reasons that say the credentials themselves are wrong: only a person can fix them, in the Secret.
# (A missing or unreadable Secret stays CloudNotReady, with the cloud's reason in the message.)
CREDENTIALS_REASONS = frozenset({Reason.CREDENTIALS_REJECTED, Reason.CREDENTIALS_INVALID})


def blocked(world: World, obj: Attachment, reason: str, message: str, retry: float | None = None) -> Outcome:
    """A prerequisite is missing: say so (Ready too, unless the NIC is attached and Ready), look again later
    (or when it appears: the watch brings it sooner)."""
    wanted = [Condition(SYNCED, False, reason, message)]
    ready = conditions.get(obj.status, READY)
    if ready is None or ready.get("status") != "True" or obj.deleting:
        wanted.insert(0, Condition(READY, False, reason, message))
    delay = (retry or world.settings.dependency_retry) * random.uniform(0.9, 1.1)
    return Outcome(
        write=Write(obj, None, wanted, ("Warning", reason, message)),
        next=Look(min(delay, 30.0) if obj.deleting else delay),
        label="deferred",
    )


def paused(obj: Attachment) -> Outcome:
    message = 'the ecsnic.io/paused annotation is "true": no cloud calls'
    return Outcome(write=Write(obj, None, [Condition(SYNCED, False, Reason.PAUSED, message)]))


def paused_deletion(obj: Attachment) -> Outcome:
    """Paused means no cloud calls, the detach included: say what the deletion waits for and the ways out."""
    message = (
        'deletion waits: the ecsnic.io/paused annotation is "true", so the NIC is not detached. Remove the '
        "annotation to detach, or set spec.deletionPolicy: Orphan to delete and leave the NIC attached"
    )
    wanted = [Condition(READY, False, Reason.PAUSED, message), Condition(SYNCED, False, Reason.PAUSED, message)]
    return Outcome(write=Write(obj, None, wanted, ("Warning", Reason.PAUSED, message)))


def settling(world: World, obj: Attachment, cloud: Cloud | None) -> Outcome | None:
    """Just started: the EcsCloud watch may not have delivered yet, or the cloud's first check is under way
    (it requeues its attachments when done). Judging now would flip every resource's conditions."""
    if (cloud is None and time.monotonic() - world.started_at < STARTUP_GRACE) or (
        cloud is not None and cloud.reason == PENDING
    ):
        # A Ready one waiting is still a drift check: it stays behind new work.
        return Outcome(next=Look(2.0, new=resumed_ready(obj)), label="deferred")
    return None


async def cloud(world: World, obj: Attachment) -> Cloud | Outcome:
    found = world.clouds.get(obj.spec.cloud)
    if (wait := settling(world, obj, found)) is not None:
        return wait
    if found is None:
        return blocked(world, obj, Reason.CLOUD_NOT_FOUND, f"EcsCloud {obj.spec.cloud!r} does not exist")
    if not found.ready and found.reason in CREDENTIALS_REASONS:
        # Terminal until someone fixes the Secret (its fix re-queues this): say what to fix, and where.
        spec = found.spec
        message = (
            f"EcsCloud {spec.name!r} credentials (Secret {spec.secret_namespace}/{spec.secret_name}, type "
            f"{spec.credentials_type}) are not usable: {found.reason}: {found.message}. Fix the Secret"
        )
        return blocked(world, obj, Reason.CREDENTIALS_REJECTED, message, retry=world.settings.spec_retry)
    if not found.ready or found.client is None:
        message = f"EcsCloud {obj.spec.cloud!r} is not Ready: {found.reason}: {found.message}"
        return blocked(world, obj, Reason.CLOUD_NOT_READY, message)
    if found.spec.namespace_selector:
        labels = await world.kube.namespace_labels(obj.namespace)
        if not found.allows(labels):
            message = f"EcsCloud {obj.spec.cloud!r} does not allow namespace {obj.namespace!r} (spec.namespaceSelector)"
            return blocked(world, obj, Reason.NAMESPACE_NOT_ALLOWED, message)
    return found


async def signer(world: World, obj: Attachment) -> Signer | Outcome:
    try:
        return await world.evidence.load()
    except KeyUnavailable as exc:
        message = f"cannot sign or verify attach intents, so no cloud call is made: {exc}"
        return blocked(world, obj, Reason.INTENT_KEY_UNAVAILABLE, message)


async def server(world: World, obj: Attachment, signer: Signer) -> str | Outcome:
    if obj.spec.server_id:
        return obj.spec.server_id.lower()
    if obj.status_server:
        return obj.status_server  # resolved once; a Node later losing its providerID changes nothing
    if obj.intent is not None and obj.intent.server and signer.verify(obj):
        return obj.intent.server  # resolved before the attach: the Node may be gone or changed since
    node = obj.spec.node_name or ""
    try:
        provider_id = await world.kube.node_provider_id(node)
    except Gone:
        world.kube.forget("node", node)
        return blocked(world, obj, Reason.NODE_NOT_FOUND, f"Node {node!r} does not exist")
    if not provider_id or not provider_id.rstrip("/").rsplit("/", 1)[-1]:
        world.kube.forget("node", node)
        return blocked(world, obj, Reason.NODE_NO_PROVIDER_ID, f"Node {node!r} has no spec.providerID")
    return provider_id.rstrip("/").rsplit("/", 1)[-1].lower()
