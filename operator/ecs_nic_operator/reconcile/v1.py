"""The controller's steps for Huawei's v1 API (issue 13), kept out of controller.py so that its call sites stay
few and small: start an attach job and record its ID, follow a recorded job, refuse a second POST after a
lost answer, refuse IPv6 on v2.1, and the v1 detach. Each step ends in a status write and a scheduled look
(``Stop``), or returns the port to go on with. The rules are in reconcile/jobs.py."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NoReturn

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.reconcile import jobs
from ecs_nic_operator.reconcile.errors import classify
from ecs_nic_operator.reconcile.pacing import poll_delay
from ecs_nic_operator.reconcile.status import SYNCED_OK, ready_condition
from ecs_nic_operator.resources import Attachment, Key, status_from_port
from ecs_nic_operator.servers import ServerKey

if TYPE_CHECKING:
    from ecs_nic_operator.clouds import Cloud
    from ecs_nic_operator.controller import Controller

log = logging.getLogger("ecs_nic_operator.v1")


class V1Flow:
    def __init__(self, ctl: Controller, stop: type[Exception]) -> None:
        self.ctl = ctl
        self._stop = stop  # the controller's "reconcile ends here" (its status and next look are decided)
        # Intents (by their startedAt) whose POST is known to have made no NIC: refused before it took effect,
        # or its job ended in FAIL. Lost on a restart, which then only makes the next attach wait (jobs.py).
        self.ended: dict[Key, str] = {}
        self._polls: dict[Key, int] = {}

    def forget(self, key: Key) -> None:
        self.ended.pop(key, None)
        self._polls.pop(key, None)

    async def refuse_unsupported(self, obj: Attachment, cloud: Cloud) -> None:
        """IPv6 needs the v1 API: on v2.1 say so, with no cloud call."""
        if obj.spec.ipv6 and cloud.spec.api != "v1":
            message = (
                f"spec.ipv6 needs an EcsCloud with spec.api: v1 (Huawei's batch NIC API); EcsCloud "
                f"{cloud.spec.name!r} uses {cloud.spec.api}, whose os-interface call cannot ask for IPv6. No call "
                "was made: set spec.api: v1 on the EcsCloud, or recreate the attachment without spec.ipv6"
            )
            await self.ctl._blocked(obj, Reason.UNSUPPORTED_BY_API, message, retry=self.ctl.settings.spec_retry)

    async def post(self, obj: Attachment, client: EcsClient, skey: ServerKey) -> NoReturn:
        """The v1 POST, the intent already recorded: write the job ID at once, then follow it."""
        assert obj.intent is not None
        ctl = self.ctl
        try:
            job_id = await jobs.start_attach(client, skey[1], obj.spec)
        except errors.CloudError as exc:
            if not getattr(exc, "may_have_taken_effect", False) and not isinstance(exc, errors.InUse):
                self.ended[obj.key] = obj.intent.started_at  # refused before anything was made
            raise
        self.ended.pop(obj.key, None)
        ctl.room.took(skey)
        log.info("%s/%s: v1 attach job %s started on server %s", obj.namespace, obj.name, job_id, skey[1])
        self._polls[obj.key] = 0
        await ctl.status.write(
            obj,
            {"serverId": skey[1], "jobId": job_id},
            jobs.running(job_id, skey[1]),  # no Event: the job ID is in status, and "Attached" follows
        )
        ctl.queue.schedule(obj.key, max(ctl.settings.poll_min, 0.5))
        raise self._stop()

    async def follow_job(self, obj: Attachment, cloud: Cloud, skey: ServerKey) -> InterfaceAttachment | None:
        """A recorded attach job: wait while it runs; its NIC when it succeeded (status written); on FAIL the
        error is reported and the job forgotten (the next look may POST again); None when the cloud no longer
        knows the job (then the caller looks for the NIC by the intent, as after a lost answer)."""
        ctl = self.ctl
        client = cloud.client
        assert client is not None and obj.job_id is not None
        found = await jobs.look(client, obj.job_id)
        if found.state == "running":
            assert found.job is not None
            polls = self._polls.get(obj.key, 0) + 1
            self._polls[obj.key] = polls
            await ctl.status.write(obj, None, jobs.running(obj.job_id, skey[1]))
            ctl.queue.schedule(obj.key, poll_delay(ctl.settings, polls))
            raise self._stop()
        self._polls.pop(obj.key, None)
        if found.state == "failed":
            assert found.error is not None
            if obj.intent is not None:
                self.ended[obj.key] = obj.intent.started_at
            ctl.room.forget(skey)
            verdict = classify(found.error, ctl.settings, ctl._bump(obj.key))
            wanted = [
                Condition(READY, False, verdict.reason, verdict.message),
                Condition(SYNCED, False, verdict.reason, verdict.message),
            ]
            await ctl.status.write(obj, {"jobId": None}, wanted, event=("Warning", verdict.reason, verdict.message))
            ctl.queue.schedule(obj.key, verdict.delay)
            raise self._stop()
        if found.state == "gone":
            if obj.intent is not None:  # it ended long ago: a NIC it made is listed now, or there is none
                self.ended[obj.key] = obj.intent.started_at
            await ctl.status.write(
                obj,
                {"jobId": None},
                [
                    Condition(
                        SYNCED,
                        True,
                        Reason.RECONCILE_SUCCESS,
                        f"v1 job {obj.job_id} is no longer known to the cloud; looking for its NIC",
                    )
                ],
            )
            return None
        assert found.nic_id is not None
        ports = await ctl.views.ports(client, skey, 0)
        port = ports.get(found.nic_id)
        if port is None:
            # SUCCESS names the NIC, the list does not show it yet: look again soon, the job is still the evidence.
            ctl.queue.schedule(obj.key, ctl.settings.poll_min)
            raise self._stop()
        ctl.views.note(skey, port)
        message = f"port {port.port_id} attached on server {skey[1]} by v1 job {obj.job_id} ({port.port_state})"
        log.info("%s/%s: %s", obj.namespace, obj.name, message)
        await ctl.status.write(
            obj,
            {**status_from_port(skey[1], port), "jobId": None},
            [ready_condition(skey, port), SYNCED_OK],
            event=("Normal", "Attached", message),
        )
        ctl._attempts.pop(obj.key, None)
        ctl._down_since[obj.key] = time.monotonic()
        ctl.queue.schedule(obj.key, 0 if port.port_state == "ACTIVE" else ctl.settings.poll_min)
        return port

    async def nic_before_delete(self, obj: Attachment, client: EcsClient, skey: ServerKey) -> str | None:
        """Deleting while an attach job is recorded: its NIC must not appear after the finalizer is gone, so wait
        for the job to end; then the NIC it made (None: it made none)."""
        assert obj.job_id is not None
        found = await jobs.look(client, obj.job_id)
        if found.state == "running":
            assert found.job is not None
            ctl = self.ctl
            polls = self._polls.get(obj.key, 0) + 1
            self._polls[obj.key] = polls
            await ctl.status.write(obj, None, jobs.running(obj.job_id, skey[1], detaching=True))
            ctl.queue.schedule(obj.key, poll_delay(ctl.settings, polls))
            raise self._stop()
        return found.nic_id

    async def unanswered(self, obj: Attachment, skey: ServerKey) -> None:
        """v1, an intent, no job ID, no NIC of it on the server: go on only when its POST is known to have made
        nothing; otherwise wait (listing) up to the bound, then block."""
        assert obj.intent is not None
        if self.ended.get(obj.key) == obj.intent.started_at:
            return
        ctl = self.ctl
        polls = self._polls.get(obj.key, 0) + 1
        self._polls[obj.key] = polls
        verdict = jobs.unanswered(
            obj.intent, skey[1], ctl.settings.stuck_after, poll_delay(ctl.settings, polls), ctl.settings.stuck_retry
        )
        reason = Reason.ATTACH_UNCONFIRMED
        await ctl.status.write(obj, None, verdict.conditions, event=("Warning", reason, verdict.conditions[0].message))
        ctl.queue.schedule(obj.key, verdict.retry_in)
        raise self._stop()

    async def detach(self, client: EcsClient, obj: Attachment, server: str, port_id: str) -> None:
        """v1 deletes the port with the NIC. A port the spec named by portId is not ours to delete: it is
        detached through v2.1's os-interface DELETE, so it survives as it does on v2.1 (docs/api.md)."""
        if getattr(client, "api", "v2.1") == "v1" and not obj.spec.port_id:
            job_id = await client.delete_nics(server, [port_id])
            log.info("%s/%s: v1 delete job %s for port %s", obj.namespace, obj.name, job_id, port_id)
            return
        await client.detach(server, port_id)
