"""Huawei's v1 NIC API in the reconcile: an attach (or a detach) is a job, and its ID is the evidence.

- The job ID is written to ``status.jobId`` the moment the POST answers, and a later look (after a restart too)
  follows that job instead of starting another: RUNNING waits, SUCCESS yields the NIC, FAIL yields the error
  the synchronous API would have raised (classified by its ``Ecs.xxxx`` code, so the reasons are the v2.1 ones).
- A POST whose answer was lost (a gateway 504, a timeout, a crash before the status write) leaves an attach
  intent and no job ID. The job may still be running and create its NIC later, so no second POST is sent:
  the server is listed (adoption by the intent, as on v2.1) until the NIC appears, for ``stuck_after`` seconds
  from the intent; then the attachment blocks (``AttachUnconfirmed``) until a person decides. Only a job known
  to have ended without a NIC (FAIL, seen by this process) or a POST refused before it took effect lets a new
  POST go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.errors import CloudError, NotFound, error_from_response
from ecs_nic_operator.cloud.models import Job
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.resources import AttachmentSpec, Intent, Key


async def start_attach(client: EcsClient, server: str, spec: AttachmentSpec) -> str:
    """The v1 POST for this spec: security groups and IPv6 go in the call itself; returns the job ID."""
    return await client.add_nic(
        server,
        net_id=spec.net_id if not spec.port_id else None,
        port_id=spec.port_id,
        fixed_ip=spec.fixed_ip,
        security_groups=spec.security_groups or () if not spec.port_id else (),
        ipv6=spec.ipv6,
        ipv6_bandwidth=spec.ipv6_bandwidth,
    )


@dataclass(frozen=True, slots=True)
class JobLook:
    """One look at a job: ``running``, ``succeeded`` (``nic_id`` set), ``failed`` (``error`` set) or ``gone``
    (the cloud no longer knows it: Huawei keeps jobs a day, so it ended long ago)."""

    state: str
    job: Job | None = None
    nic_id: str | None = None
    error: CloudError | None = None


def job_error(job: Job) -> CloudError:
    """A failed job as the error the synchronous call would have raised: by its code first, as every answer."""
    message = f"v1 job {job.job_id} failed: {job.fail_reason or 'no reason given'}"
    body = json.dumps({"error": {"code": job.error_code or "Ecs.1000", "message": message}}).encode()
    return error_from_response("job", 400, httpx.Headers(), body)


async def look(client: EcsClient, job_id: str) -> JobLook:
    try:
        job = await client.show_job(job_id)
    except NotFound as exc:
        if exc.what == "job":
            return JobLook("gone")
        raise
    if not job.done:
        return JobLook("running", job)
    if job.succeeded:
        if not job.nic_ids:
            return JobLook("failed", job, error=CloudError("job", f"v1 job {job_id} succeeded but names no NIC"))
        return JobLook("succeeded", job, nic_id=job.nic_ids[0])
    return JobLook("failed", job, error=job_error(job))


def running(job_id: str, server: str, detaching: bool = False) -> list[Condition]:
    """The same text whatever the job's INIT/RUNNING: following a job writes nothing new until it ends."""
    what = "detach" if detaching else "attach"
    message = f"v1 job {job_id} ({what} on server {server}) is running"
    return [
        Condition(READY, False, Reason.DETACHING if detaching else Reason.JOB_RUNNING, message),
        Condition(SYNCED, True, Reason.RECONCILE_SUCCESS, message),
    ]


def _age(intent: Intent, now: datetime) -> float | None:
    try:
        started = datetime.strptime(intent.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (now - started).total_seconds()


@dataclass(frozen=True, slots=True)
class Unanswered:
    """What to do about an attach intent with no job ID and no NIC found on the server."""

    blocked: bool
    conditions: list[Condition]
    retry_in: float


def unanswered(
    intent: Intent, server: str, bound: float, poll: float, retry: float, now: datetime | None = None
) -> Unanswered:
    """Wait (listing) while the bound from the intent lasts, then block: never a second POST meanwhile."""
    age = _age(intent, now or datetime.now(UTC))
    if age is not None and age < bound:
        message = (
            f"a v1 attach was sent to server {server} at {intent.started_at} and its answer (the job ID) was "
            f"lost; no second one is sent while that job may still add the NIC: looking for it until "
            f"{bound:.0f} s have passed"
        )
        return Unanswered(
            False,
            [
                Condition(READY, False, Reason.ATTACH_UNCONFIRMED, message),
                Condition(SYNCED, False, Reason.ATTACH_UNCONFIRMED, message),
            ],
            poll,
        )
    message = (
        f"a v1 attach was sent to server {server} at {intent.started_at}, its answer (the job ID) was lost and no "
        f"NIC of it appeared within {bound:.0f} s. No second attach is sent on a guess: check the server; if it has "
        "no NIC of this resource, remove the ecsnic.io/attach-intent annotation and the ecsnic.io/finalizer "
        "finalizer to attach anew (a NIC that appears meanwhile is still adopted)"
    )
    return Unanswered(
        True,
        [
            Condition(READY, False, Reason.ATTACH_UNCONFIRMED, message),
            Condition(SYNCED, False, Reason.ATTACH_UNCONFIRMED, message),
        ],
        retry,
    )


def unanswered_delete(
    intent: Intent, server: str, bound: float, poll: float, retry: float, now: datetime | None = None
) -> Unanswered:
    """Deleting while an attach's answer (the job ID) is lost: its job may still add the NIC after the finalizer
    went, which would leak it. So the deletion waits like the attach does, listing the server, and detaches
    the NIC once it appears. After the bound it keeps the finalizer and keeps listing at the slow pace (a NIC
    that appears even then is still detached), and says how a person lets go: never a silent release."""
    age = _age(intent, now or datetime.now(UTC))
    if age is not None and age < bound:
        message = (
            f"deletion waits: a v1 attach was sent to server {server} at {intent.started_at} and its answer (the "
            f"job ID) was lost, so its job may still add a NIC, which would then be left attached; the server is "
            f"listed until {bound:.0f} s have passed and that NIC is detached if it appears"
        )
        return Unanswered(False, [Condition(READY, False, Reason.ATTACH_UNCONFIRMED, message)], poll)
    message = (
        f"deletion waits: a v1 attach was sent to server {server} at {intent.started_at}, its answer (the job "
        f"ID) was lost and no NIC of it appeared within {bound:.0f} s. The finalizer stays, and a NIC of it that "
        "still appears is detached. Check the server: if it has no NIC of this resource, set "
        "spec.deletionPolicy: Orphan (or remove the ecsnic.io/finalizer finalizer) to let the deletion finish"
    )
    return Unanswered(True, [Condition(READY, False, Reason.ATTACH_UNCONFIRMED, message)], retry)


@dataclass
class V1Memory:
    # Intents (by their startedAt) whose POST is known to have made no NIC: refused before it took effect, or
    # its job ended in FAIL. Lost on a restart, which then only makes the next attach wait (reconcile/jobs.py).
    ended: dict[Key, str] = field(default_factory=dict)
    polls: dict[Key, int] = field(default_factory=dict)  # looks at a running job

    def forget(self, key: Key) -> None:
        self.ended.pop(key, None)
        self.polls.pop(key, None)

    def poll(self, key: Key) -> int:
        self.polls[key] = self.polls.get(key, 0) + 1
        return self.polls[key]
