"""kopf registrations only: watch events in, the controller does the rest.

Why raw event handlers instead of kopf's create/update/delete handlers: those keep their progress in
annotations and cost up to four PATCHes per processing cycle, plus a timer task per object for polling.
Here a watch event only updates an in-memory copy and schedules a key; the controller decides, and
writes at most three times from create to Ready (see controller.py). kopf still provides the watching
(with bookmarks and inactivity timeouts), login and Event posting; with --leader-elect it runs only on the
replica that holds the Lease (leader.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from ecs_nic_operator import GROUP, __version__, leader, memory, metrics
from ecs_nic_operator.config import ANNOTATION_PREFIX, Settings
from ecs_nic_operator.controller import Controller
from ecs_nic_operator.fence import FENCE
from ecs_nic_operator.kube import Kube, load_config

log = logging.getLogger("ecs_nic_operator")


class State:
    """The one controller this process runs; set at startup."""

    settings = Settings()
    controller: Controller | None = None
    trimming: asyncio.Task[None] | None = None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    own = State.settings
    # The finalizer is ours (config.FINALIZER), added and removed by the controller. kopf must not share
    # its name: kopf removes "its" finalizer from objects that have no handlers needing one, which with
    # event-only handlers is every object. Its own markers stay in our prefix should it ever write any.
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Resources are discovered once at startup; no watch on CustomResourceDefinitions, so the ClusterRole
    # needs no CRD access (deploy/manifests/rbac.yaml). Install the CRDs before the operator.
    settings.scanning.disabled = True
    # A silent watch (lost connection, API server restart) is restarted after this long.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.inactivity_timeout = 600
    settings.watching.reconnect_backoff = 1.0
    # Events: info and above, with our own reason names.
    settings.posting.level = logging.INFO
    settings.posting.enabled = True
    # Only the Events the controller posts on purpose; never kopf's per-handler log lines (one per watch
    # event would double the API writes).
    settings.posting.loggers = False
    settings.networking.request_timeout = 60
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    # kopf keeps a worker task per object until it has been idle this long; a creation wave of thousands
    # would otherwise hold thousands of them (and their memory) for the default 5 s after each event.
    settings.batching.idle_timeout = 1.0
    api = load_config()
    api.user_agent = leader.user_agent()
    State.controller = Controller(Kube(api), own)
    metrics.COLLECTOR.source = lambda: State.controller
    State.trimming = asyncio.create_task(memory.trim_forever(), name="malloc-trim")
    metrics.OPERATOR_INFO.info({"version": __version__})
    log.info("ecs-nic-operator %s started (resync every %.0f s)", __version__, own.resync_period)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if State.trimming is not None:
        State.trimming.cancel()
    if State.controller is not None:
        await State.controller.stop()


async def stop_acting() -> None:
    """A leader's shutdown, before it hands the lease over: no reconcile runs on, and no Kubernetes call of
    ours is still in flight in the pool (a thread's request would otherwise land under the next leader)."""
    controller = State.controller
    if controller is None:
        return
    await controller.stop()
    FENCE.close()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, controller.kube.pool.shutdown), 15)


def _controller() -> Controller | None:
    """Started on the first watch event, not at startup: the controller's tasks then inherit kopf's
    per-operator context (Event posting, settings), which is set up only once the watchers run."""
    controller = State.controller
    if controller is not None and not controller.started:
        controller.start()
    return controller


@kopf.on.event(GROUP, "v1alpha1", "ecsnicattachments")
async def attachment_event(type: str, event: kopf.RawEvent, **_: Any) -> None:
    controller = _controller()
    if controller is None:
        return
    controller.observe(dict(event["object"]), deleted=type == "DELETED", listed=type is None)


@kopf.on.event(GROUP, "v1alpha1", "ecsclouds")
async def cloud_event(type: str, event: kopf.RawEvent, **_: Any) -> None:
    controller = _controller()
    if controller is None:
        return
    controller.clouds.observe(dict(event["object"]), deleted=type == "DELETED")


@kopf.on.probe(id="queue")
def queue_depth(**_: Any) -> int:
    return len(State.controller.queue) if State.controller else 0
