"""The EcsNicAttachment reconciler: from the latest object and what the cloud reports, to a status.

Flow: a watch event (handlers.py) stores a compact copy of the object and schedules its key; a worker
runs reconcile(key): resolve the cloud and the server, then either follow the attached port (shared
per-server list calls), or attach (intent recorded first, adoption when a POST may repeat one), or, when
the object is being deleted, detach and release the finalizer. Every outcome ends in a status write only
when something a user can see changed, and in a scheduled next look: nothing loops without a delay.

Kubernetes writes from create to Ready: 1) finalizer + attach intent (one guarded metadata patch, before
the POST), 2) status with the port as the cloud returned it (DOWN), 3) status Ready once ACTIVE.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import defaultdict
from typing import Any, NoReturn

import kopf

from ecs_nic_operator import conditions, metrics
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.clouds import PENDING, Cloud, Clouds
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Conflict, Gone, Kube
from ecs_nic_operator.reconcile import ports as port_props
from ecs_nic_operator.reconcile.adopt import adoptable
from ecs_nic_operator.reconcile.capacity import nic_limit
from ecs_nic_operator.reconcile.errors import backoff, classify
from ecs_nic_operator.reconcile.evidence import Evidence, KeyUnavailable, Signer
from ecs_nic_operator.reconcile.ownership import port_claimer, rivals
from ecs_nic_operator.reconcile.pacing import (
    ACTIVE_SEEN_MAX_AGE,
    BASELINE_MAX_AGE,
    RESEND_DETACH_AFTER,
    RUN_FALLBACK,
    Runs,
    poll_delay,
    resumed_drift_delay,
    resync_delay,
)
from ecs_nic_operator.reconcile.room import RECHECK_MAX_AGE, ROOM_MAX_AGE, Room
from ecs_nic_operator.reconcile.status import SYNCED_OK, StatusWriter, ready_condition
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.reconcile.stuck import Stuck, attach_stuck, detach_stuck
from ecs_nic_operator.reconcile.timing import FirstLook
from ecs_nic_operator.reconcile.v1 import V1Flow
from ecs_nic_operator.resources import Attachment, Intent, Key, status_from_port
from ecs_nic_operator.servers import ServerKey, ServerViews
from ecs_nic_operator.workqueue import WorkQueue

log = logging.getLogger("ecs_nic_operator.controller")


# After a start, how long a missing EcsCloud is taken for "not listed yet" rather than "does not exist".
STARTUP_GRACE = 10.0


# EcsCloud reasons that say the credentials themselves are wrong: only a person can fix them, in the Secret.
# (A missing or unreadable Secret stays CloudNotReady, with the cloud's reason in the message.)
CREDENTIALS_REASONS = frozenset({Reason.CREDENTIALS_REJECTED, Reason.CREDENTIALS_INVALID})


class Stop(Exception):
    """Reconcile ends here; the status and the next look were already decided."""


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.store = Store()
        self.status = StatusWriter(kube, self.store)
        self.evidence = Evidence(kube, settings.operator_namespace)
        # uids deleted lately: a LIST answered after their DELETED event must not bring them back.
        self._deleted: dict[str, float] = {}
        self.clouds = Clouds(kube, settings, self._cloud_changed)
        self.views = ServerViews()
        self.queue: WorkQueue[Key] = WorkQueue(self.reconcile, settings.workers, self.clouds.useful_in_flight)
        self._attempts: dict[Key, int] = defaultdict(int)
        self._polls: dict[Key, int] = {}
        self._waiting: dict[ServerKey, set[Key]] = defaultdict(set)  # attachments following a DOWN port
        self._activation = FirstLook()  # when to look after an attach
        self._timed: dict[Key, float] = {}  # attachments whose next look is a first look, and when attached
        # port, when its DELETE was answered, and whether that answer was a 404 (not proof: see _finalize)
        self._detaching: dict[Key, tuple[str, float, bool]] = {}
        self._detach = FirstLook()  # when to look after a DELETE was answered
        # Since when a followed port is not ACTIVE, and since when a port's detach was first accepted (a DELETE
        # sent again keeps it): the bound of AttachStuck / DetachStuck (reconcile/stuck.py).
        self._down_since: dict[Key, float] = {}
        self._detach_since: dict[Key, tuple[str, float]] = {}
        self.room = Room()  # free NIC slots per server, before attaching (reconcile/room.py)
        self._seen: set[Key] = set()  # reconciled at least once by this process (resume progress)
        self._runs = Runs()  # a server's new attachments, taken back to back (reconcile/pacing.py)
        self._started_at = time.monotonic()
        self._resync_task: asyncio.Task[None] | None = None
        self._listed = False  # every watched attachment read once (see _know_all)
        self._listing = asyncio.Lock()
        self.v1 = V1Flow(self, Stop)  # issue 13: Huawei's v1 API (reconcile/v1.py, reconcile/jobs.py)

    @property
    def objects(self) -> dict[Key, Attachment]:
        return self.store.objects

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._resync_task is not None

    def start(self) -> None:
        self._started_at = time.monotonic()
        self.queue.start()
        self._resync_task = asyncio.create_task(self._resync_clouds(), name="cloud-resync")

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
        await self.queue.stop()
        await self.clouds.close()

    async def _resync_clouds(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_period * random.uniform(0.9, 1.1))
            try:
                await self.clouds.resync()
            except Exception:  # check() records its own failures; nothing may end this loop
                log.exception("cloud resync failed")

    # -- watch events ---------------------------------------------------------------------------------

    def observe(self, body: dict[str, Any], deleted: bool = False) -> None:
        new = Attachment.from_body(body)
        key = new.key
        if deleted:
            self._tombstone(new.uid)
            self._forget(key)
            return
        old = self.objects.get(key)
        if old is not None and int(old.resource_version or 0) > int(new.resource_version or 0):
            return  # an event older than the patch answer we already hold
        self.store.put(new)
        if old is None and not new.port_id and new.intent is None and not new.deleting:
            self._runs.add(new)
        # Our own writes come back as events too (status, and finalizer + intent, whose event may even beat
        # the write's answer); only what a user changed needs a look now.
        if (
            old is None
            or old.generation != new.generation
            or old.deleting != new.deleting
            or old.paused != new.paused
            or (old.has_finalizer and not new.has_finalizer)
            or old.uid != new.uid
        ):
            if old is None:
                self._first_look(new)
            else:
                self.queue.schedule(key)

    def _first_look(self, obj: Attachment) -> None:
        """An object this process has not held before (a creation, or every object after a start or a
        takeover). One attached and Ready is a drift check, spread out behind new work; the rest are new work
        (attaches, polls of DOWN ports, interrupted attaches) in the new lane."""
        if self._resumed_ready(obj):
            skey = (obj.spec.cloud, obj.status_server or "")
            self.queue.schedule(obj.key, resumed_drift_delay(self.settings, skey), new=True)
        else:
            self.queue.schedule(obj.key, new=True)

    def _resumed_ready(self, obj: Attachment) -> bool:
        return bool(obj.port_id and obj.status_server and not obj.paused and self._healthy(obj))

    def _next_on_server(self, skey: ServerKey) -> bool:
        """Take the next new attachment on this server out of turn; False when there is none."""
        key = self._runs.take_next(skey, lambda k: k in self.objects and k not in self._seen)
        if key is None:
            return False
        self.queue.schedule(key, front=True)
        return True

    def _tombstone(self, uid: str) -> None:
        now = time.monotonic()
        self._deleted[uid] = now
        if len(self._deleted) > 1000:
            self._deleted = {u: t for u, t in self._deleted.items() if now - t < 600}

    def _forget(self, key: Key) -> None:
        obj = self.store.remove(key)
        if obj is not None:
            self._runs.discard(obj)
            self._release_claims(obj)
        self.queue.forget(key)
        self._attempts.pop(key, None)
        self._polls.pop(key, None)
        self._detaching.pop(key, None)
        self._detach_since.pop(key, None)
        self._down_since.pop(key, None)
        self._timed.pop(key, None)
        self._seen.discard(key)
        self.v1.forget(key)

    def _cloud_changed(self, cloud: str) -> None:
        """The cloud's readiness changed: look again at its attachments that are not Ready and Synced (they
        may go on now, or should say why not). Healthy ones keep their NIC whatever the cloud's condition, and
        learn of it at their next look: a flapping EcsCloud costs no status write or Event per healthy one."""
        for key, obj in list(self.objects.items()):
            if obj.spec.cloud == cloud and not self._healthy(obj):
                self.queue.schedule(key, random.uniform(0, 1.0))

    @staticmethod
    def _healthy(obj: Attachment) -> bool:
        summary = {type_: status for type_, status, _ in obj.conditions_summary}
        return not obj.deleting and summary.get(READY) == "True" and summary.get(SYNCED) == "True"

    # -- reconcile --------------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        obj = self.objects.get(key)
        if obj is None:
            return
        started = time.monotonic()
        outcome = "ok"
        if key not in self._seen:
            self._runs.discard(obj)
        try:
            if obj.deleting and obj.paused and obj.has_finalizer and obj.spec.deletion_policy != "Orphan":
                await self._paused_deletion(obj)
            elif obj.deleting:
                await self._finalize(obj)
            elif obj.paused:
                await self._paused(obj)
            else:
                await self._ensure(obj)
        except Stop:
            outcome = "deferred"
        except Conflict:
            # Someone changed the object after we looked: the watch brings the new version; look again soon,
            # backing off should the watch itself be down (then our copy stays stale until it is back).
            outcome = "conflict"
            self.queue.schedule(key, backoff(self.settings, self._bump(key)))
        except Gone:
            # The object is gone although no DELETED event said so (a watch re-list): forget it, or its
            # claims, its memory and its gauges would stay as a ghost.
            outcome = "gone"
            self._forget(key)
        except Exception:
            outcome = "error"
            log.exception("reconcile of %s/%s failed unexpectedly", *key)
            self.queue.schedule(key, backoff(self.settings, self._bump(key)))
        finally:
            if key not in self._seen and key in self.objects:
                self._seen.add(key)
                metrics.RESUMED.inc()
            metrics.RECONCILES.labels(outcome).inc()
            metrics.RECONCILE_DURATION.observe(time.monotonic() - started)

    def _bump(self, key: Key) -> int:
        self._attempts[key] += 1
        return self._attempts[key]

    async def _paused(self, obj: Attachment) -> None:
        await self.status.write(
            obj,
            None,
            [Condition(SYNCED, False, Reason.PAUSED, 'the ecsnic.io/paused annotation is "true": no cloud calls')],
        )

    async def _paused_deletion(self, obj: Attachment) -> None:
        """Paused means no cloud calls, the detach included: say what the deletion waits for and the ways out."""
        message = (
            'deletion waits: the ecsnic.io/paused annotation is "true", so the NIC is not detached. Remove the '
            "annotation to detach, or set spec.deletionPolicy: Orphan to delete and leave the NIC attached"
        )
        await self.status.write(
            obj,
            None,
            [Condition(READY, False, Reason.PAUSED, message), Condition(SYNCED, False, Reason.PAUSED, message)],
            event=("Warning", Reason.PAUSED, message),
        )

    # -- resolving the cloud and the server ----------------------------------------------------------

    async def _cloud(self, obj: Attachment) -> Cloud:
        cloud = self.clouds.get(obj.spec.cloud)
        self._wait_if_settling(obj, cloud)
        if cloud is None:
            await self._blocked(obj, Reason.CLOUD_NOT_FOUND, f"EcsCloud {obj.spec.cloud!r} does not exist")
        elif not cloud.ready and cloud.reason in CREDENTIALS_REASONS:
            # Terminal until someone fixes the Secret (its fix re-queues this): say what to fix, and where.
            spec = cloud.spec
            await self._blocked(
                obj,
                Reason.CREDENTIALS_REJECTED,
                f"EcsCloud {spec.name!r} credentials (Secret {spec.secret_namespace}/{spec.secret_name}, type "
                f"{spec.credentials_type}) are not usable: {cloud.reason}: {cloud.message}. Fix the Secret",
                retry=self.settings.spec_retry,
            )
        elif not cloud.ready or cloud.client is None:
            await self._blocked(
                obj,
                Reason.CLOUD_NOT_READY,
                f"EcsCloud {obj.spec.cloud!r} is not Ready: {cloud.reason}: {cloud.message}",
            )
        else:
            if cloud.spec.namespace_selector:
                labels = await self.kube.namespace_labels(obj.namespace)
                if not cloud.allows(labels):
                    await self._blocked(
                        obj,
                        Reason.NAMESPACE_NOT_ALLOWED,
                        f"EcsCloud {obj.spec.cloud!r} does not allow namespace {obj.namespace!r} "
                        "(spec.namespaceSelector)",
                    )
            return cloud

    def _wait_if_settling(self, obj: Attachment, cloud: Cloud | None) -> None:
        """Just started: the EcsCloud watch may not have delivered yet, or the cloud's first check is under
        way (it requeues its attachments when done). Judging now would flip every resource's conditions."""
        if (cloud is None and time.monotonic() - self._started_at < STARTUP_GRACE) or (
            cloud is not None and cloud.reason == PENDING
        ):
            # A Ready one waiting is still a drift check: it stays behind new work.
            self.queue.schedule(obj.key, 2.0, new=self._resumed_ready(obj))
            raise Stop

    async def _server(self, obj: Attachment, signer: Signer) -> str:
        if obj.spec.server_id:
            return obj.spec.server_id.lower()
        if obj.status_server:
            return obj.status_server  # resolved once; a Node later losing its providerID changes nothing
        if obj.intent is not None and signer.verify(obj):
            return obj.intent.server  # resolved before the attach: the Node may be gone or changed since
        node = obj.spec.node_name or ""
        provider_id: str | None = None
        try:
            provider_id = await self.kube.node_provider_id(node)
        except Gone:
            self.kube.forget("node", node)
            await self._blocked(obj, Reason.NODE_NOT_FOUND, f"Node {node!r} does not exist")
        if not provider_id or not provider_id.rstrip("/").rsplit("/", 1)[-1]:
            self.kube.forget("node", node)
            await self._blocked(obj, Reason.NODE_NO_PROVIDER_ID, f"Node {node!r} has no spec.providerID")
        return provider_id.rstrip("/").rsplit("/", 1)[-1].lower()

    async def _blocked(self, obj: Attachment, reason: str, message: str, retry: float | None = None) -> NoReturn:
        """A Kubernetes-side prerequisite is missing: say so, look again later (or when it appears)."""
        wanted = [Condition(SYNCED, False, reason, message)]
        ready = conditions.get(obj.status, READY)
        if ready is None or ready.get("status") != "True" or obj.deleting:
            wanted.insert(0, Condition(READY, False, reason, message))
        await self.status.write(obj, None, wanted, event=("Warning", reason, message))
        delay = (retry or self.settings.dependency_retry) * random.uniform(0.9, 1.1)
        self.queue.schedule(obj.key, min(delay, 30.0) if obj.deleting else delay)
        raise Stop

    # -- create / follow / drift -----------------------------------------------------------------------

    async def _ensure(self, obj: Attachment) -> None:
        cloud = await self._cloud(obj)
        await self.v1.refuse_unsupported(obj, cloud)  # issue 13: IPv6 on v2.1, no cloud call
        signer = await self._signer(obj)
        server = await self._server(obj, signer)
        skey: ServerKey = (cloud.spec.name, server)
        assert cloud.client is not None
        used = cloud.client  # a credentials refusal counts only against the client that made the call
        if obj.port_id and not obj.has_finalizer:
            # Someone removed our finalizer from an attached NIC: without it a delete would leak the NIC.
            obj = self.status.keep(
                await self.kube.add_finalizer(obj.namespace, obj.name, obj.resource_version, obj.finalizers)
            )
        try:
            if obj.job_id and not obj.port_id:  # -- issue 13: a recorded v1 job is followed, never repeated
                if await self.v1.follow_job(obj, cloud, skey) is not None:
                    return
                obj = self.objects.get(obj.key, obj)
            if obj.port_id and obj.status_server == server:
                await self._follow(obj, cloud, skey, signer)
            else:
                await self._attach(obj, cloud, skey, signer)
        except errors.CloudError as exc:
            await self._cloud_error(obj, cloud, exc, used)

    async def _signer(self, obj: Attachment) -> Signer:
        try:
            return await self.evidence.load()
        except KeyUnavailable as exc:
            await self._blocked(
                obj,
                Reason.INTENT_KEY_UNAVAILABLE,
                f"cannot sign or verify attach intents, so no cloud call is made: {exc}",
            )

    async def _unverifiable(self, obj: Attachment, server: str, why: str) -> NoReturn:
        """The evidence of an earlier attach is not ours: it proves nothing, so adopt nothing, attach nothing."""
        message = (
            f"{why}, so it proves nothing: no NIC is adopted and none is attached. Check server {server} for a "
            "NIC this resource attached; then remove the ecsnic.io/attach-intent annotation and the "
            "ecsnic.io/finalizer finalizer to attach anew (or delete the resource)"
        )
        await self._blocked(obj, Reason.INTENT_UNVERIFIABLE, message, retry=self.settings.spec_retry)

    async def _port_claimed(self, obj: Attachment, claimer: Attachment) -> NoReturn:
        port = obj.spec.port_id
        message = (
            f"port {port} belongs to EcsNicAttachment {claimer.namespace}/{claimer.name}: this resource neither "
            "attaches, adopts nor detaches it. Delete one of the two; this one goes on once the other lets go"
        )
        await self._blocked(obj, Reason.PORT_CLAIMED, message, retry=self.settings.spec_retry)

    def _release_claims(self, obj: Attachment) -> None:
        """obj is gone: attachments waiting for the port it held (PortClaimed) may go on; a server nobody
        is on any more needs no cached view."""
        for port in {obj.port_id, obj.spec.port_id} - {None}:
            assert port is not None
            for other in self.store.naming_port(port):
                if other.spec.port_id == port and not other.port_id:
                    self.queue.schedule(other.key, random.uniform(0, 1.0))
        server = obj.status_server or (obj.spec.server_id or "").lower() or (obj.intent.server if obj.intent else "")
        if server and not self.store.on_server((obj.spec.cloud, server)):
            self.views.forget_server((obj.spec.cloud, server))
            self.room.forget((obj.spec.cloud, server))

    async def _know_all(self) -> None:
        """Adoption weighs every other attachment's claim on a server's ports, but just after a start the watch
        may not have delivered them all yet: read them all once, before the first adoption decision."""
        if self._listed:
            return
        async with self._listing:
            if self._listed:
                return
            bodies, _ = await self.kube.list_attachments(self.settings.namespaces)
            for body in bodies:
                new = Attachment.from_body(body)
                # Deleted while the LIST ran (its DELETED event came first): do not revive it as a ghost.
                if new.key not in self.objects and new.uid not in self._deleted:
                    self.store.put(new)
                    self._first_look(new)  # its own watch event may now look like nothing changed
            self._listed = True

    async def _follow(self, obj: Attachment, cloud: Cloud, skey: ServerKey, signer: Signer) -> None:
        assert cloud.client is not None and obj.port_id
        polling = obj.port_state != "ACTIVE" or not any(c[0] == READY for c in obj.conditions_summary)
        # Following a DOWN port may reuse a list another attachment on the server just made; a drift
        # check of a Ready one also shares the per-server call of the same resync round.
        # Half a period: fresh enough for a drift check, yet each round's phase-aligned look (a period after
        # the last) still lists, and after a restart a server's attachments, queued far apart, share one list.
        max_age = self.settings.poll_min * 2 if polling else self.settings.resync_period / 2
        ports = self.views.cached(skey, ACTIVE_SEEN_MAX_AGE) if polling else {}
        port = ports.get(obj.port_id)
        if port is None or port.port_state != "ACTIVE":
            # A list that already showed this port ACTIVE answers the poll (only a listing after the attach
            # can show it ACTIVE), so a server's DOWN ports share one list however far apart they were polled.
            ports = await self.views.ports(cloud.client, skey, max_age)
            port = ports.get(obj.port_id)
        if port is None:
            # Not on the server any more: confirm with a fresh look before calling it drift.
            ports = await self.views.ports(cloud.client, skey, 0)
            port = ports.get(obj.port_id)
        if port is None:
            await self._drifted(obj, cloud, skey, signer)
            return
        self._wake_siblings(obj.key, skey, ports)
        self._attempts.pop(obj.key, None)
        active = port.port_state == "ACTIVE"
        attached = self._timed.pop(obj.key, None)
        if attached is not None:
            self._activation.seen(active, time.monotonic() - attached)
        if active:
            self._polls.pop(obj.key, None)
            self._down_since.pop(obj.key, None)
            self._forget_waiting(skey, obj.key)
            ready = ready_condition(skey, port)
            was = conditions.get(obj.status, READY)
            first = was is None or was.get("status") != "True"
            event = ("Normal", "Active", f"port {port.port_id} ({port.mac_addr}) is ACTIVE") if first else None
            # -- issue 13: the port properties, converged at every look at an ACTIVE port (reconcile/ports.py)
            props = await port_props.converge(
                cloud.network, obj.spec.port_properties, port.port_id, cloud.spec.name, cloud.spec.api
            )
            if props.updated and not first:
                event = ("Normal", "PortUpdated", f"port {port.port_id}: {', '.join(props.updated)} updated in place")
            if props.synced is not None:
                event = ("Warning", props.synced.reason, props.synced.message)
            fields = {**status_from_port(skey[1], port), **props.fields}
            await self.status.write(obj, fields, [ready, props.synced or SYNCED_OK], event=event)
            self._schedule_resync(obj.key, skey)
        else:
            polls = self._polls.get(obj.key, 0) + 1
            self._polls[obj.key] = polls
            since = self._down_since.setdefault(obj.key, self._stuck_since(obj, Reason.ATTACH_STUCK))
            stuck = attach_stuck(
                skey[1],
                port.port_id,
                attached_at=since,
                now=time.monotonic(),
                port_state=port.port_state,
                after=self.settings.stuck_after,
                retry=self.settings.stuck_retry,
            )
            if stuck is not None:
                # Looked at slowly from now on: out of the waiting set, or a sibling's list would wake it at
                # the fast pace. Ready turns True at a later look once the cloud reports the port ACTIVE.
                self._forget_waiting(skey, obj.key)
                await self.status.write(
                    obj,
                    status_from_port(skey[1], port),
                    [Condition(READY, False, stuck.reason, stuck.message), SYNCED_OK],
                    event=("Warning", stuck.reason, stuck.message),
                )
                self.queue.schedule(obj.key, stuck.retry_in)
                return
            self._waiting[skey].add(obj.key)
            await self.status.write(obj, status_from_port(skey[1], port), [ready_condition(skey, port), SYNCED_OK])
            self.queue.schedule(obj.key, self._poll_delay(polls))

    def _stuck_since(self, obj: Attachment, reason: str) -> float:
        """Where the bound of a stuck operation starts when this process has not seen it start: now, unless the
        status already reports it stuck (before a restart), so a restart does not hide it again for a while."""
        ready = conditions.get(obj.status, READY)
        now = time.monotonic()
        return now - self.settings.stuck_after if ready is not None and ready.get("reason") == reason else now

    def _wake_siblings(self, key: Key, skey: ServerKey, ports: dict[str, InterfaceAttachment]) -> None:
        """Other attachments on this server waiting for ACTIVE whose port this list shows ACTIVE: look now,
        while the list is fresh, instead of each listing the server again at its own poll time."""
        for other in list(self._waiting.get(skey, ())):
            obj = self.objects.get(other)
            if obj is None:
                self._forget_waiting(skey, other)
            elif (
                other != key
                and not obj.deleting
                and obj.port_id in ports
                and obj.status_server == skey[1]
                and obj.spec.cloud == skey[0]
            ):
                if ports[obj.port_id].port_state == "ACTIVE":
                    self.queue.schedule(other)
                else:
                    # Still DOWN: its own poll comes at the usual pace, not at the fallback of a run of attaches.
                    self.queue.schedule(other, self._poll_delay(self._polls.get(other, 0) + 1))

    def _forget_waiting(self, skey: ServerKey, key: Key) -> None:
        waiting = self._waiting.get(skey)
        if waiting is not None:
            waiting.discard(key)
            if not waiting:
                del self._waiting[skey]

    def _poll_delay(self, polls: int) -> float:
        return poll_delay(self.settings, polls)

    def _schedule_resync(self, key: Key, skey: ServerKey) -> None:
        self.queue.schedule(key, resync_delay(self.settings, skey))

    async def _drifted(self, obj: Attachment, cloud: Cloud, skey: ServerKey, signer: Signer) -> None:
        """The port is gone from the server. Status keeps naming it until the repair's answer replaces it: the
        repair's intent records the port it replaces, so a crash or a conflict in between is resumed by
        adoption against the repair's own baseline, never by a second attach against a stale one."""
        repairing = obj.intent is not None and obj.intent.replaces == obj.port_id
        self.room.forget(skey)  # a NIC left the server without us: the count we keep is one short
        if not repairing:
            message = f"port {obj.port_id} is no longer attached to server {skey[1]}; attaching again"
            log.info("%s/%s: %s", obj.namespace, obj.name, message)
            kopf.warn(obj.ref(), reason=Reason.NIC_DETACHED, message=message)  # type: ignore[arg-type]
            metrics.DRIFT_REPAIRS.inc()
        await self._attach(obj, cloud, skey, signer, repair=True)

    async def _attach(
        self, obj: Attachment, cloud: Cloud, skey: ServerKey, signer: Signer, repair: bool = False
    ) -> None:
        client = cloud.client
        assert client is not None
        async with self.views.lock(skey):
            obj = self.objects.get(obj.key, obj)
            if obj.deleting or obj.paused:
                self.queue.schedule(obj.key)
                raise Stop
            if obj.port_id and obj.status_server == skey[1] and not repair:
                await self._follow(obj, cloud, skey, signer)
                return
            spec = obj.spec
            port: InterfaceAttachment | None = None
            adopted = False
            # Only an intent still in flight is kept on the object (see resources._live_intent): the first
            # attach's, or a repair's that replaces the port status still names.
            if obj.intent is not None and not signer.verify(obj):
                why = "the ecsnic.io/attach-intent annotation was not written by this operator for this object"
                await self._unverifiable(obj, skey[1], why + " (unreadable, edited, or copied)")
            if obj.intent is None and obj.has_finalizer and not obj.port_id:
                why = "the ecsnic.io/attach-intent annotation that this operator wrote before attaching was removed"
                await self._unverifiable(obj, skey[1], why)
            if spec.port_id and (claimer := port_claimer(self.store, obj, spec.port_id, signer)) is not None:
                await self._port_claimed(obj, claimer)
            if obj.intent is not None:
                # An earlier attach may have reached the cloud without its answer being saved.
                await self._know_all()
                ports = await self.views.ports(client, skey, 0)
                port = adoptable(spec, obj.intent, ports, *rivals(self.store, skey, obj.key, signer))
                adopted = port is not None
                if port is None and cloud.spec.api == "v1" and not repair:  # -- issue 13: a lost job ID
                    await self.v1.unanswered(obj, skey)
            if port is None:
                await self._check_room(obj, cloud, skey)
                known: tuple[str, ...] | None = None
                if spec.net_id and not spec.fixed_ip:
                    # The baseline need not be a list made just now: we hold the server's lock and note our own
                    # attaches in the view, and even a fresh list cannot exclude an out-of-band attach between
                    # it and our POST (the rate limiter may hold the POST for seconds). So a recent view serves,
                    # and a server's queued attaches share one baseline list instead of one each.
                    ports = await self.views.ports(client, skey, BASELINE_MAX_AGE)
                    known = tuple(sorted(ports))
                intent = signer.sign(obj, Intent(conditions.now(), known, skey[1], obj.port_id if repair else None))
                body = await self.kube.record_intent(
                    obj.namespace, obj.name, obj.resource_version, obj.finalizers, intent.dump()
                )
                obj = self.status.keep(body)
                if obj.key not in self.objects:
                    raise Gone("deleted while its intent was being recorded")
                try:
                    if cloud.spec.api == "v1":  # -- issue 13: a job, its ID recorded at once, then followed
                        await self.v1.post(obj, client, skey)
                    port = await client.attach(
                        skey[1], net_id=spec.net_id, port_id=spec.port_id, fixed_ip=spec.fixed_ip
                    )
                except errors.InUse:
                    ports = await self.views.ports(client, skey, 0)
                    port = adoptable(spec, intent, ports, *rivals(self.store, skey, obj.key, signer))
                    if port is None:
                        raise
                    adopted = True
                except errors.CloudError as exc:
                    # It may have reached the cloud (the intent makes the next try adopt), or the cloud says the
                    # server is full: the count kept for it is not known to be right any more.
                    if isinstance(exc, errors.QuotaExceeded) or getattr(exc, "may_have_taken_effect", False):
                        self.room.forget(skey)
                    raise
                else:
                    self.room.took(skey)
                self.views.note(skey, port)
            self._polls[obj.key] = 0
            self._waiting[skey].add(obj.key)
            self._down_since[obj.key] = time.monotonic()  # AttachStuck's bound starts at the attach
            verb = "adopted" if adopted else ("re-attached" if repair else "attached")
            message = f"port {port.port_id} {verb} on server {skey[1]} ({port.port_state})"
            log.info("%s/%s: %s", obj.namespace, obj.name, message)
            metrics.ATTACHES.labels("adopted" if adopted else "created").inc()
            active = port.port_state == "ACTIVE"
            try:
                await self.status.write(
                    obj,
                    status_from_port(skey[1], port),
                    [ready_condition(skey, port), SYNCED_OK],
                    event=(
                        "Normal",
                        "DriftRepaired" if repair else ("Adopted" if adopted else "Attached"),
                        message,
                    ),
                )
            except Gone:
                await self._roll_back(obj, client, skey, port)
                raise
        self._attempts.pop(obj.key, None)
        more = self._next_on_server(skey)
        if active:
            self._schedule_resync(obj.key, skey)
        elif more:
            # The last of this server's run of attaches polls for all: its list wakes the others (see
            # _wake_siblings). This later look is only the fallback should the run stop before its end.
            self.queue.schedule(obj.key, max(self.settings.poll_min, self._activation.delay) + RUN_FALLBACK)
        else:
            self._timed[obj.key] = time.monotonic()
            self.queue.schedule(obj.key, max(self.settings.poll_min, self._activation.delay))

    async def _check_room(self, obj: Attachment, cloud: Cloud, skey: ServerKey) -> None:
        """Just before a POST: a server the cloud says is full gets none (NicLimitReached), only a later look.
        Called with the server's lock held, so no attach of ours is in flight on it (each is counted in)."""
        assert cloud.client is not None
        spec = cloud.spec
        which = (spec.name, spec.endpoint, spec.project_id)
        free = await self.room.free(cloud.client, which, skey, ROOM_MAX_AGE)
        if nic_limit(skey[1], free, 0, self.settings.spec_retry) is None:
            return
        # Blocking on a count we kept would miss a NIC detached by hand since: only the cloud's own word blocks.
        free = await self.room.free(cloud.client, which, skey, min(RECHECK_MAX_AGE, self.settings.spec_retry / 2))
        full = nic_limit(skey[1], free, 0, self.settings.spec_retry)
        if full is None:
            return
        log.info("%s/%s: %s", obj.namespace, obj.name, full.message)
        await self.status.write(
            obj,
            None,
            [Condition(READY, False, full.reason, full.message), Condition(SYNCED, False, full.reason, full.message)],
            event=("Warning", full.reason, full.message),
        )
        self.queue.schedule(obj.key, full.retry_in)
        raise Stop

    async def _roll_back(self, obj: Attachment, client: EcsClient, skey: ServerKey, port: InterfaceAttachment) -> None:
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
                await asyncio.sleep(classify(exc, self.settings, attempt).delay)
                continue
            except errors.CloudError as exc:
                log.error("%s: cannot detach port %s, which no resource owns: %s", what, port.port_id, exc)
                break
            self.views.drop(skey, port.port_id)
            self.room.freed(skey)
            metrics.ROLLED_BACK.inc()
            return
        message = f"port {port.port_id} on server {skey[1]} was left attached: detach it by hand"
        log.error("%s was deleted while its port was being attached; %s", what, message)
        kopf.warn(obj.ref(), reason=Reason.DETACH_BLOCKED, message=message)  # type: ignore[arg-type]

    async def _cloud_error(
        self, obj: Attachment, cloud: Cloud, exc: errors.CloudError, used: EcsClient, detaching: bool = False
    ) -> None:
        verdict = classify(exc, self.settings, self._bump(obj.key))
        if isinstance(exc, errors.AuthError):
            spec = cloud.spec
            # The attachment's user may not own the EcsCloud: name what to fix and where it lives.
            where = (
                f"EcsCloud {spec.name!r} credentials (Secret {spec.secret_namespace}/{spec.secret_name}, "
                f"type {spec.credentials_type}) rejected: "
            )
            verdict = dataclasses.replace(verdict, message=where + verdict.message)
            self.clouds.credentials_rejected(cloud.spec.name, used, str(exc))
        obj = self.objects.get(obj.key, obj)
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
        await self.status.write(obj, None, wanted, event=event)
        self.queue.schedule(obj.key, verdict.delay)

    # -- delete ------------------------------------------------------------------------------------------

    async def _detach_stuck(
        self, obj: Attachment, client: EcsClient, skey: ServerKey, port_id: str, stuck: Stuck
    ) -> None:
        """The cloud accepted the detach long ago and still lists the port: say so and what to do, and send the
        DELETE again at the slow pace (a repeat gets through once the cause is gone, e.g. the server stopped)."""
        last = self._detaching[obj.key][1]
        if time.monotonic() - last >= self.settings.stuck_retry / 2:  # not an early look (an Event, a cloud change)
            not_found = False
            async with self.views.lock(skey):
                try:
                    await self.v1.detach(client, obj, skey[1], port_id)  # issue 13: v1 or v2.1
                except errors.NotFound:
                    not_found = True
            self._detaching[obj.key] = (port_id, time.monotonic(), not_found)
        await self.status.write(
            obj,
            None,
            [Condition(READY, False, stuck.reason, stuck.message), SYNCED_OK],
            event=("Warning", stuck.reason, stuck.message),
        )
        self.queue.schedule(obj.key, stuck.retry_in)

    async def _finalize(self, obj: Attachment) -> None:
        if not obj.has_finalizer:
            return
        if obj.spec.deletion_policy == "Orphan" or (not obj.port_id and obj.intent is None):
            await self.kube.remove_finalizer(obj.namespace, obj.name, obj.finalizers)
            if obj.port_id:
                kopf.info(
                    obj.ref(),  # type: ignore[arg-type]
                    reason="Orphaned",
                    message=f"port {obj.port_id} left attached (Orphan)",
                )
            return
        found_cloud = self.clouds.get(obj.spec.cloud)
        self._wait_if_settling(obj, found_cloud)
        if found_cloud is None or not found_cloud.ready or found_cloud.client is None:
            why = "does not exist" if found_cloud is None else f"is not Ready ({found_cloud.reason})"
            await self._blocked(
                obj,
                Reason.DETACH_BLOCKED,
                f"cannot detach: EcsCloud {obj.spec.cloud!r} {why}. Fix the EcsCloud, or set "
                "spec.deletionPolicy: Orphan to delete this resource and leave the NIC attached",
            )
        cloud = found_cloud
        signer = await self._signer(obj)
        if obj.intent is not None and not obj.port_id and not signer.verify(obj):
            # Evidence we did not write proves no NIC is ours: detach nothing, and do not hold the deletion.
            message = (
                "the ecsnic.io/attach-intent annotation was not written by this operator for this object, so no "
                "NIC is detached: check the server for a NIC this resource may have attached and detach it by hand"
            )
            kopf.warn(obj.ref(), reason=Reason.INTENT_UNVERIFIABLE, message=message)  # type: ignore[arg-type]
            await self.kube.remove_finalizer(obj.namespace, obj.name, obj.finalizers)
            return
        server = obj.status_server or await self._server(obj, signer)
        skey = (cloud.spec.name, server)
        client = cloud.client
        assert client is not None
        try:
            port_id = obj.port_id
            if obj.job_id and port_id is None:  # -- issue 13: an attach job may still add a NIC
                port_id = await self.v1.nic_before_delete(obj, client, skey)
            if obj.intent is not None and (port_id is None or obj.intent.replaces == port_id):
                # An attach (or a drift repair) may have reached the cloud before a crash: find it first.
                await self._know_all()
                async with self.views.lock(skey):
                    ports = await self.views.ports(client, skey, 0)
                    if port_id is None or port_id not in ports:
                        found = adoptable(obj.spec, obj.intent, ports, *rivals(self.store, skey, obj.key, signer))
                        port_id = found.port_id if found else port_id
            if port_id is not None:
                detaching = self._detaching.get(obj.key)
                if detaching is None or detaching[0] != port_id:
                    # Straight to the DELETE: a port already gone answers 404, which the next look confirms.
                    not_found = False
                    async with self.views.lock(skey):
                        try:
                            await self.v1.detach(client, obj, server, port_id)  # issue 13: v1 or v2.1
                        except errors.NotFound:
                            not_found = True
                    self._detaching[obj.key] = (port_id, time.monotonic(), not_found)
                    self._polls[obj.key] = 0
                    since = self._detach_since.get(obj.key)
                    if since is None or since[0] != port_id:
                        self._detach_since[obj.key] = (port_id, self._stuck_since(obj, Reason.DETACH_STUCK))
                    ready = conditions.get(obj.status, READY)
                    if ready is None or ready.get("reason") != Reason.DETACH_STUCK:
                        message = f"detaching port {port_id} from server {server}"
                        await self.status.write(
                            obj,
                            None,
                            [Condition(READY, False, Reason.DETACHING, message), SYNCED_OK],
                            event=("Normal", "Detaching", message),
                        )
                    self.queue.schedule(obj.key, max(self.settings.poll_min, self._detach.delay))
                    return
                answered = detaching[1]
                # Any list sent after the DELETE was answered that no longer shows the port settles it, so a
                # server's detaching ports share one list; otherwise look now.
                seen = self.views.listed_since(skey, answered)
                if seen is None or port_id in seen:
                    max_age = min(self.settings.poll_min / 2, time.monotonic() - answered)
                    seen = await self.views.ports(client, skey, max_age)
                polls = self._polls.get(obj.key, 0)
                if polls == 0:
                    self._detach.seen(port_id not in seen, time.monotonic() - answered)
                if port_id in seen:
                    self._polls[obj.key] = polls + 1
                    stuck = detach_stuck(
                        server,
                        port_id,
                        accepted_at=self._detach_since.get(obj.key, (port_id, answered))[1],
                        now=time.monotonic(),
                        port_state=seen[port_id].port_state,
                        after=self.settings.stuck_after,
                        retry=self.settings.stuck_retry,
                    )
                    if stuck is not None:
                        await self._detach_stuck(obj, client, skey, port_id, stuck)
                        return
                    if detaching[2] or polls + 1 >= RESEND_DETACH_AFTER:
                        # The DELETE answered 404 (a wrong endpoint or a gateway, not the port) or was lost, yet
                        # the port is still listed: send it again rather than wait for a detach nobody started.
                        del self._detaching[obj.key]
                    self.queue.schedule(obj.key, self._poll_delay(polls + 1))
                    return
                self.views.drop(skey, port_id)
                if detaching[2]:
                    self.room.forget(skey)  # it left before our DELETE (answered 404): not ours to count
                else:
                    self.room.freed(skey)
                detached = f"port {port_id} detached from server {server}"
                kopf.info(obj.ref(), reason="Detached", message=detached)  # type: ignore[arg-type]
        except errors.CloudError as exc:
            if not (isinstance(exc, errors.NotFound) and exc.what == "server"):
                await self._cloud_error(obj, cloud, exc, client, detaching=True)
                return
            # A 404 said "server". That is a guess from a body that may name nothing (a gateway's "API does not
            # exist", a wrong endpoint): ask for the server itself and release only when the cloud says it is gone.
            try:
                gone = await client.server_gone(server)
            except errors.CloudError as confirm:
                await self._cloud_error(obj, cloud, confirm, client, detaching=True)
                return
            if not gone:
                await self._cloud_error(obj, cloud, exc, client, detaching=True)
                return
            kopf.info(
                obj.ref(),  # type: ignore[arg-type]
                reason="ServerGone",
                message=f"server {server} no longer exists, and its NICs with it: nothing is left to detach",
            )
        await self.kube.remove_finalizer(obj.namespace, obj.name, obj.finalizers)
