"""Liveness and readiness that reflect a live watch, not just a running process.

A small aiohttp server on ``--health-port`` (started from a kopf startup hook) answers:

- ``/readyz``: 200 once the watch of each resource matched a LIST at least once (initial listing
  delivered), and while the API server answered a LIST of each watched resource recently *and* the watch
  has delivered what that LIST returned (the object it sampled, at that resourceVersion or newer): the
  initial listing arrived and the stream is caught up. 503 otherwise (API server unreachable for longer
  than ``stale_after``, or a watch lagging behind the API server for longer than ``grace``).
- ``/healthz``: 200 while the event loop answers (this handler runs on it), the probe task is alive, and no
  watch has lagged behind a reachable API server for longer than ``stuck_after``: a stuck watch is what a
  restart fixes. An unreachable API server does *not* fail liveness — restarting would not help.

The probe is one LIST with ``limit=1`` per watched resource every ``interval`` seconds, through the
operator's own identity (RBAC: the list verb it already needs for its watches), so its cost does not grow
with the number of objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web

from ecs_nic_operator import GROUP, VERSION

log = logging.getLogger("ecs_nic_operator.health")

RESOURCES = ("ecsnicattachments", "ecsclouds")  # (plural); ecsclouds is cluster-scoped
Key = tuple[str, str]


def _env(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class Config:
    port: int = 0
    bind_address: str = "0.0.0.0"
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    interval: float = field(default_factory=lambda: _env("ECSNIC_HEALTH_INTERVAL", 5.0))
    stale_after: float = field(default_factory=lambda: _env("ECSNIC_HEALTH_STALE_AFTER", 0.0))
    grace: float = field(default_factory=lambda: _env("ECSNIC_HEALTH_GRACE", 0.0))
    stuck_after: float = field(default_factory=lambda: _env("ECSNIC_HEALTH_STUCK_AFTER", 300.0))

    def __post_init__(self) -> None:
        # Defaults scale with the probe interval: three missed probes make the API server "unreachable".
        self.stale_after = self.stale_after or 3 * self.interval
        self.grace = self.grace or max(2 * self.interval, 5.0)


class Health:
    """What the watch delivered and what the API server answered; pure bookkeeping, testable offline."""

    def __init__(self, config: Config, clock: Any = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.seen: dict[str, dict[Key, int]] = {plural: {} for plural in RESOURCES}
        self.api_ok_at: float | None = None
        self.api_error: str = "not probed yet"
        self.lagging_since: dict[str, float] = {}
        self.caught_up: set[str] = set()  # resources whose watch matched a LIST at least once
        self.probe_task: asyncio.Task[None] | None = None

    # -- fed by the watch -----------------------------------------------------------------------------

    def observed(self, plural: str, body: dict[str, Any], deleted: bool) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if deleted:
            self.seen[plural].pop(key, None)
            return
        try:
            rv = int(meta.get("resourceVersion") or 0)
        except ValueError:
            rv = 0
        self.seen[plural][key] = max(rv, self.seen[plural].get(key, 0))

    # -- fed by the probe -----------------------------------------------------------------------------

    def listed(self, plural: str, items: list[dict[str, Any]]) -> None:
        """The API server answered a LIST; note whether the watch has caught up with what it returned."""
        now = self.clock()
        self.api_ok_at = now
        self.api_error = ""
        behind = False
        for item in items:
            meta = item.get("metadata") or {}
            key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            try:
                rv = int(meta.get("resourceVersion") or 0)
            except ValueError:
                continue
            if self.seen[plural].get(key, -1) < rv:
                behind = True
        if behind:
            self.lagging_since.setdefault(plural, now)
        else:
            self.lagging_since.pop(plural, None)
            self.caught_up.add(plural)

    def unreachable(self, error: str) -> None:
        self.api_error = error

    # -- verdicts -------------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        problems: list[str] = []
        if self.api_ok_at is None:
            problems.append(f"API server not answered yet ({self.api_error})")
        elif now - self.api_ok_at > self.config.stale_after:
            # A probe that hangs records no error: say so rather than printing empty parentheses.
            why = self.api_error or "the probe's LIST has not returned"
            problems.append(f"API server unreachable for {now - self.api_ok_at:.1f} s ({why})")
        for plural in RESOURCES:
            if plural not in self.caught_up:
                problems.append(f"watch of {plural} has not delivered the initial listing yet")
        for plural, since in sorted(self.lagging_since.items()):
            if plural in self.caught_up and now - since > self.config.grace:
                problems.append(f"watch of {plural} behind the API server for {now - since:.1f} s")
        return not problems, {"ready": not problems, "problems": problems, **self._facts(now)}

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        problems: list[str] = []
        if self.probe_task is not None and self.probe_task.done():
            problems.append("the health probe task stopped")
        api_recent = self.api_ok_at is not None and now - self.api_ok_at <= self.config.stale_after
        for plural, since in sorted(self.lagging_since.items()):
            if api_recent and now - since > self.config.stuck_after:
                problems.append(f"watch of {plural} stuck behind a reachable API server for {now - since:.0f} s")
        return not problems, {"alive": not problems, "problems": problems, **self._facts(now)}

    def _facts(self, now: float) -> dict[str, Any]:
        return {
            "apiServerLastAnsweredSecondsAgo": None if self.api_ok_at is None else round(now - self.api_ok_at, 2),
            "objectsSeen": {plural: len(keys) for plural, keys in self.seen.items()},
        }

    # -- running ----------------------------------------------------------------------------------------

    async def probe_forever(self) -> None:
        from kubernetes import client

        from ecs_nic_operator.kube import load_config  # a client of its own: never queues behind the controller

        api = client.CustomObjectsApi(load_config())
        timeout = max(1.0, min(10.0, self.config.interval * 2))

        def list_one(plural: str) -> list[dict[str, Any]]:
            if plural == "ecsclouds" or not self.config.namespaces:
                result: Any = api.list_cluster_custom_object(GROUP, VERSION, plural, limit=1, _request_timeout=timeout)
                return list(result.get("items") or [])
            items: list[dict[str, Any]] = []
            for ns in self.config.namespaces:
                page: Any = api.list_namespaced_custom_object(
                    GROUP, VERSION, ns, plural, limit=1, _request_timeout=timeout
                )
                items.extend(page.get("items") or [])
            return items

        while True:
            for plural in RESOURCES:
                try:
                    items = await asyncio.to_thread(list_one, plural)
                except Exception as exc:  # any failure to answer counts as unreachable
                    status = getattr(exc, "status", None)
                    self.unreachable(f"LIST {plural}: {status or type(exc).__name__}")
                    break
                self.listed(plural, items)
            await asyncio.sleep(self.config.interval)


CONFIG = Config()
HEALTH = Health(CONFIG)
_runner: web.AppRunner | None = None


def configure(port: int, bind_address: str, namespaces: tuple[str, ...]) -> None:
    """Called by the CLI before kopf starts; port 0 leaves the health server off."""
    CONFIG.port = port
    CONFIG.bind_address = bind_address
    CONFIG.namespaces = namespaces


def _response(ok: bool, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=200 if ok else 503,
        text=json.dumps(body, sort_keys=True) + "\n",
        content_type="application/json",
    )


async def _readyz(_: web.Request) -> web.Response:
    return _response(*HEALTH.readiness())


async def _healthz(_: web.Request) -> web.Response:
    return _response(*HEALTH.liveness())


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/readyz", _readyz)
    application.router.add_get("/healthz", _healthz)
    application.router.add_get("/livez", _healthz)
    return application


@kopf.on.startup(id="health-server")
async def _start(**_: Any) -> None:
    global _runner
    if not CONFIG.port or _runner is not None:
        return
    runner = web.AppRunner(app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, CONFIG.bind_address, CONFIG.port).start()
    _runner = runner
    HEALTH.probe_task = asyncio.create_task(HEALTH.probe_forever(), name="health-probe")
    log.info("health endpoints on %s:%d (/healthz, /readyz)", CONFIG.bind_address, CONFIG.port)


@kopf.on.cleanup(id="health-server")
async def _stop(**_: Any) -> None:
    global _runner
    if HEALTH.probe_task is not None:
        HEALTH.probe_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await HEALTH.probe_task
    if _runner is not None:
        await _runner.cleanup()
        _runner = None


@kopf.on.event(GROUP, VERSION, "ecsnicattachments", id="health-attachments")
async def _attachment_seen(type: str, event: kopf.RawEvent, **_: Any) -> None:
    HEALTH.observed("ecsnicattachments", dict(event["object"]), deleted=type == "DELETED")


@kopf.on.event(GROUP, VERSION, "ecsclouds", id="health-clouds")
async def _cloud_seen(type: str, event: kopf.RawEvent, **_: Any) -> None:
    HEALTH.observed("ecsclouds", dict(event["object"]), deleted=type == "DELETED")
