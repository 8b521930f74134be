"""A cloud call failed: what the user sees (reason, message, whether Ready must turn False) and when to retry."""

from __future__ import annotations

import dataclasses
import logging

from ecs_nic_operator import conditions
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.clouds import Cloud
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.reconcile.errors import classify
from ecs_nic_operator.reconcile.outcome import Look, Outcome, Write
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment

log = logging.getLogger("ecs_nic_operator.controller")


def cloud_error(
    world: World, obj: Attachment, cloud: Cloud, exc: errors.CloudError, used: EcsClient, detaching: bool = False
) -> Outcome:
    verdict = classify(exc, world.settings, world.memory.bump(obj.key))
    if isinstance(exc, errors.AuthError):
        spec = cloud.spec
        # The attachment's user may not own the EcsCloud: name what to fix and where it lives.
        where = (
            f"EcsCloud {spec.name!r} credentials (Secret {spec.secret_namespace}/{spec.secret_name}, "
            f"type {spec.credentials_type}) rejected: "
        )
        verdict = dataclasses.replace(verdict, message=where + verdict.message)
        # A refusal counts only against the client that made the call (not keys rotated in since).
        world.clouds.credentials_rejected(cloud.spec.name, used, str(exc))
    obj = world.store.get(obj.key) or obj
    ready_now = conditions.get(obj.status, READY)
    keep_ready = not verdict.blocks_ready and ready_now is not None and ready_now.get("status") == "True"
    wanted = [Condition(SYNCED, False, verdict.reason, verdict.message)]
    event = ("Warning", verdict.reason, verdict.message)
    if detaching:
        # Deleting, and the detach keeps failing: say why the finalizer stays and what the user can do.
        message = (
            f"cannot detach: {verdict.message}. Retrying; or set spec.deletionPolicy: Orphan to delete this "
            "resource and leave the NIC attached"
        )
        wanted.insert(0, Condition(READY, False, Reason.DETACH_BLOCKED, message))
        event = ("Warning", Reason.DETACH_BLOCKED, message)
    elif not keep_ready:
        wanted.insert(0, Condition(READY, False, verdict.reason, verdict.message))
    log.info("%s/%s: %s; next try in %.1f s", obj.namespace, obj.name, verdict.message, verdict.delay)
    # The intent this attempt recorded is the newest: an earlier one copied back must not verify (evidence.py).
    signed = world.memory.signed.pop(obj.key, 0)
    fields = {"intentSeq": signed} if signed > obj.intent_seq else None
    return Outcome(write=Write(obj, fields, wanted, event), next=Look(verdict.delay))
