"""The EcsNicAttachment reconciler: watch events in, phases in order, one outcome applied, one schedule.

Flow: a watch event (handlers.py) stores a compact copy of the object (reconcile/store.py) and schedules its
key; a worker runs reconcile(key), which calls the phases in order, each a module of reconcile/ that reads
top to bottom and returns an Outcome (reconcile/outcome.py) instead of writing or scheduling itself:

    paused | deleting -> finalize.py (detach or orphan, stuck detach, then release the finalizer)
    prerequisites.py (cloud, intent key, server) -> follow.py (until ACTIVE, drift) or attach.py (adoption)
    a cloud error at any of them -> failures.py

The controller applies the outcome (status and its Event through reconcile/status.py, other Events, the
finalizer's release) and schedules the next look, and any sibling it wakes, in _schedule: the only place
that talks to the work queue. When to look is decided in reconcile/pacing.py.

Kubernetes writes from create to Ready: 1) finalizer + attach intent (one guarded metadata patch, before
the POST), 2) status with the port as the cloud returned it (DOWN), 3) status Ready once ACTIVE.

Adding a phase: a module under reconcile/ with ``async def phase(world, obj, ...) -> Outcome`` that reads
what it needs from ``World``, keeps per-key memory in ``Memory`` (forgotten in Memory.forget), and returns
what to write and when to look; then one call in _ensure (or _decide) in the order it must run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from ecs_nic_operator import metrics
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.clouds import Clouds
from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Conflict, Gone, Kube
from ecs_nic_operator.reconcile import prerequisites, v1
from ecs_nic_operator.reconcile.attach import attach
from ecs_nic_operator.reconcile.errors import backoff
from ecs_nic_operator.reconcile.evidence import Evidence
from ecs_nic_operator.reconcile.failures import cloud_error
from ecs_nic_operator.reconcile.finalize import finalize
from ecs_nic_operator.reconcile.follow import follow
from ecs_nic_operator.reconcile.memory import Memory
from ecs_nic_operator.reconcile.outcome import NOW, Event, Look, Outcome
from ecs_nic_operator.reconcile.pacing import Runs, resumed_drift_delay, resumed_ready
from ecs_nic_operator.reconcile.relist import Relist
from ecs_nic_operator.reconcile.room import Room
from ecs_nic_operator.reconcile.status import StatusWriter, healthy, post
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.reconcile.world import World
from ecs_nic_operator.resources import Attachment, Key
from ecs_nic_operator.servers import ServerKey, ServerViews
from ecs_nic_operator.workqueue import WorkQueue

log = logging.getLogger("ecs_nic_operator.controller")

SOON = 1.0  # a look "soon" after a change elsewhere, spread over this many seconds
SWEEP_AFTER = 5.0  # after the first re-listed event, when to list ourselves (kopf's re-list is under way)


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.store = Store()
        self.status = StatusWriter(kube, self.store)
        self.clouds = Clouds(kube, settings, self._cloud_changed)
        self.views = ServerViews()
        self.room = Room()
        self.memory = Memory()
        self.relist = Relist()
        self.runs = Runs()
        self.world = World(
            kube,
            settings,
            self.store,
            self.status,
            Evidence(kube, settings.operator_namespace),
            self.clouds,
            self.views,
            self.room,
            self.memory,
            self.relist,
            self.runs,
            time.monotonic(),
        )
        self.queue: WorkQueue[Key] = WorkQueue(self.reconcile, settings.workers, self.clouds.useful_in_flight)
        self._resync_task: asyncio.Task[None] | None = None
        self._sweep: asyncio.Task[None] | None = None

    @property
    def settings(self) -> Settings:
        return self.world.settings

    @property
    def objects(self) -> dict[Key, Attachment]:
        return self.store.objects

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._resync_task is not None

    def start(self) -> None:
        self.world.started_at = time.monotonic()
        self.queue.start()
        self._resync_task = asyncio.create_task(
            self.clouds.resync_forever(self.settings.resync_period), name="cloud-resync"
        )

    async def stop(self) -> None:
        for task in (self._resync_task, self._sweep):
            if task is not None:
                task.cancel()
        await self.queue.stop()
        await self.clouds.close()

    # -- events in ----------------------------------------------------------------------------------

    def observe(self, body: dict[str, Any], deleted: bool = False, listed: bool = False) -> None:
        """A watch event; ``listed``: from kopf's LIST (type None), which follows a 410 or a failed watch."""
        new = Attachment.from_body(body)
        key = new.key
        if deleted:
            self.relist.tombstone(new.uid)
            self._forget(key)
            return
        old = self.store.get(key)
        if listed and old is not None:
            self._sweep_soon()  # a re-list: objects deleted meanwhile get no DELETED event
        if old is not None and int(old.resource_version or 0) > int(new.resource_version or 0):
            return  # an event older than the patch answer we already hold
        self.store.put(new)
        if old is None and not new.port_id and new.intent is None and not new.deleting:
            self.runs.add(new)
        # Our own writes come back as events too (status, and finalizer + intent, whose event may even beat
        # the write's answer); only what a user changed needs a look now.
        if old is None:
            self._schedule(key, self._first_look(new))
        elif (
            old.generation != new.generation
            or old.deleting != new.deleting
            or old.paused != new.paused
            or (old.has_finalizer and not new.has_finalizer)
            or old.uid != new.uid
        ):
            self._schedule(key, NOW)

    def _first_look(self, obj: Attachment) -> Look:
        """An object this process has not held before (a creation, or every object after a start or a
        takeover). One attached and Ready is a drift check, spread out behind new work; the rest are new work
        (attaches, polls of DOWN ports, interrupted attaches) in the new lane."""
        if resumed_ready(obj):
            return Look(resumed_drift_delay(self.settings, (obj.spec.cloud, obj.status_server or "")), new=True)
        return Look(new=True)

    def _cloud_changed(self, cloud: str) -> None:
        """The cloud's readiness changed: look again at its attachments that are not Ready and Synced (they
        may go on now, or should say why not). Healthy ones keep their NIC whatever the cloud's condition, and
        learn of it at their next look: a flapping EcsCloud costs no status write or Event per healthy one."""
        for key, obj in list(self.objects.items()):
            if obj.spec.cloud == cloud and not healthy(obj):
                self._schedule(key, Look(random.uniform(0, SOON)))

    def _forget(self, key: Key) -> None:
        obj = self.store.remove(key)
        if obj is not None:
            self.runs.discard(obj)
            self._release_claims(obj)
        self.queue.forget(key)
        self.memory.forget(key)
        self.world.v1.forget(key)

    def _sweep_soon(self) -> None:
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.create_task(self._sweep_ghosts(), name="ghost-sweep")

    async def _sweep_ghosts(self) -> None:
        """After a re-list: forget the ghosts a LIST of our own finds (see Relist.ghosts)."""
        await asyncio.sleep(SWEEP_AFTER)
        for key in await self.relist.ghosts(self.kube, self.settings, self.store):
            self._forget(key)

    def _release_claims(self, obj: Attachment) -> None:
        """obj is gone: attachments waiting for the port it held (PortClaimed) may go on; a server nobody
        is on any more needs no cached view."""
        for port in {obj.port_id, obj.spec.port_id} - {None}:
            assert port is not None
            for other in self.store.naming_port(port):
                if other.spec.port_id == port and not other.port_id:
                    self._schedule(other.key, Look(random.uniform(0, SOON)))
        server = obj.status_server or (obj.spec.server_id or "").lower() or (obj.intent.server if obj.intent else "")
        skey: ServerKey = (obj.spec.cloud, server)
        if server and not self.store.on_server(skey):
            self.views.forget_server(skey)
            self.room.forget(skey)

    # -- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        obj = self.store.get(key)
        if obj is None:
            return
        started = time.monotonic()
        if key not in self.memory.seen:
            self.runs.discard(obj)
        outcome = Outcome()
        label = "ok"
        next_look: Look | None = None
        try:
            outcome = await self._decide(obj)
            label = outcome.label
            await self._apply(obj, outcome)
            next_look = outcome.next
        except Conflict:
            # Someone changed the object after we looked: the watch brings the new version; look again soon,
            # backing off should the watch itself be down (then our copy stays stale until it is back).
            label = "conflict"
            next_look = Look(backoff(self.settings, self.memory.bump(key)))
        except Gone:
            # The object is gone although no DELETED event said so (a watch re-list): forget it, or its
            # claims, its memory and its gauges would stay as a ghost.
            label = "gone"
            self._forget(key)
        except Exception:
            label = "error"
            log.exception("reconcile of %s/%s failed unexpectedly", *key)
            next_look = Look(backoff(self.settings, self.memory.bump(key)))
        finally:
            if key not in self.memory.seen and key in self.store:
                self.memory.seen.add(key)
                metrics.RESUMED.inc()
            metrics.RECONCILES.labels(label).inc()
            metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
        for found in self.relist.take_found():
            self._schedule(found.key, self._first_look(found))
        if key in self.store and next_look is not None:
            self._schedule(key, next_look)
        for other, look in outcome.wake:  # woken whether or not our own write landed
            self._schedule(other, look)

    async def _decide(self, obj: Attachment) -> Outcome:
        if obj.deleting and obj.paused and obj.has_finalizer and obj.spec.deletion_policy != "Orphan":
            return prerequisites.paused_deletion(obj)
        if obj.deleting:
            return await finalize(self.world, obj)
        if obj.paused:
            return prerequisites.paused(obj)
        return await self._ensure(obj)

    async def _ensure(self, obj: Attachment) -> Outcome:
        """Prerequisites, then follow an attached port or attach one; a cloud error ends any of them."""
        cloud = await prerequisites.cloud(self.world, obj)
        if isinstance(cloud, Outcome):
            return cloud
        if (refused := v1.refuse_unsupported(self.world, obj, cloud)) is not None:  # issue 13: IPv6 on v2.1
            return refused
        signer = await prerequisites.signer(self.world, obj)
        if isinstance(signer, Outcome):
            return signer
        server = await prerequisites.server(self.world, obj, signer)
        if isinstance(server, Outcome):
            return server
        skey: ServerKey = (cloud.spec.name, server)
        assert cloud.client is not None
        used = cloud.client  # a credentials refusal counts only against the client that made the call
        if obj.port_id and not obj.has_finalizer:
            # Someone removed our finalizer from an attached NIC: without it a delete would leak the NIC.
            obj = self.status.keep(
                await self.kube.add_finalizer(obj.namespace, obj.name, obj.resource_version, obj.finalizers)
            )
        try:
            repair = False
            if obj.job_id and not obj.port_id:  # -- issue 13: a recorded v1 job is followed, never repeated
                if (job := await v1.follow_job(self.world, obj, cloud, skey)) is not None:
                    return job
                obj = self.store.get(obj.key) or obj
            if obj.port_id and obj.status_server == server:
                followed = await follow(self.world, obj, cloud, skey)
                if not followed.drifted:
                    return followed
                self._post(obj, followed.events)  # said at once, whatever the repair's fate
                repair = True
            return await attach(self.world, obj, cloud, skey, signer, repair=repair)
        except errors.CloudError as exc:
            return cloud_error(self.world, obj, cloud, exc, used)

    # -- outcome out --------------------------------------------------------------------------------

    async def _apply(self, obj: Attachment, outcome: Outcome) -> None:
        """What the phase decided a user should see: Events, the status patch (with its Event), the release."""
        self._post(obj, outcome.events)
        if (write := outcome.write) is not None:
            await self.status.write(write.obj, write.fields, write.conditions, event=write.event)
        if outcome.release:
            await self.kube.remove_finalizer(obj.namespace, obj.name, obj.finalizers)

    def _post(self, obj: Attachment, events: tuple[Event, ...]) -> None:
        for kind, reason, message in events:
            post(obj, kind, reason, message)

    def _schedule(self, key: Key, look: Look) -> None:
        """The one place that asks the work queue for a look."""
        self.queue.schedule(key, look.after, front=look.front, new=look.new)
