"""Leader election by a coordination.k8s.io/v1 Lease: one replica acts, the others wait to take over.

The rules are client-go's: the holder renews every ``retry_period``; a replica takes the lease when it is
free (no holder: never created, or handed back on shutdown) or when its record has not changed for
``lease_duration`` on the *observer's own* monotonic clock since the observer last saw it change. Remote
timestamps (renewTime) are written for people reading the Lease, never trusted for a decision. Every
write carries the resourceVersion it was decided on, so two replicas racing for a free or expired lease
cannot both win. A holder that has not had a renewal confirmed within ``renew_deadline`` of sending it
stops acting (fence.py) and exits, well before anyone may take over.

Only the leader runs the operator (kopf's watches, the controller, the cloud clients): a standby makes
no cloud call and no write except its attempts on the Lease itself (a GET every retry period).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import math
import os
import random
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf
from kubernetes import client

from ecs_nic_operator import __version__, health, metrics
from ecs_nic_operator.fence import FENCE

log = logging.getLogger("ecs_nic_operator.leader")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The exit status of a replica that lost its lease: not 0, so the restart shows in the Pod's history.
EXIT_LOST = 3


class ConfigError(Exception):
    """Leader election cannot start as configured (message says what to set)."""


@dataclass(frozen=True)
class ElectionConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # client-go's constraints: the deadline leaves room for retries, the lease outlives the deadline.
        if not self.lease_duration > self.renew_deadline > 1.2 * self.retry_period > 0:
            raise ConfigError(
                "leader election needs lease duration > renew deadline > 1.2 x retry period > 0, got "
                f"{self.lease_duration:g} / {self.renew_deadline:g} / {self.retry_period:g} s"
            )
        if self.lease_duration != int(self.lease_duration):
            raise ConfigError(f"lease duration is whole seconds in a Lease, got {self.lease_duration:g}")


def lease_namespace(flag: str | None) -> str:
    """--leader-election-namespace (or its env), else the Pod's namespace (POD_NAMESPACE, the downward
    API), else the service account's namespace file that every in-cluster Pod has."""
    for value in (flag, os.environ.get("POD_NAMESPACE")):
        if value:
            return value
    with contextlib.suppress(OSError):
        value = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        if value:
            return value
    raise ConfigError(
        "--leader-elect needs the Lease's namespace: set --leader-election-namespace "
        "(ECSNIC_LEADER_ELECTION_NAMESPACE) or POD_NAMESPACE when not running in a Pod"
    )


def identity() -> str:
    """Pod name (hostname) plus a random suffix, one per process: a restarted Pod of the same name is a
    new candidate, never mistaken for the holder it replaced."""
    global _identity
    if _identity is None:
        host = os.environ.get("POD_NAME") or socket.gethostname() or "ecs-nic-operator"
        _identity = f"{host}_{secrets.token_hex(4)}"
    return _identity


_identity: str | None = None


def user_agent() -> str:
    """Names this process in the API server's audit log, so every write can be traced to a replica."""
    return f"ecs-nic-operator/{__version__} ({identity()})"


def _now() -> str:
    # MicroTime: RFC 3339 with microseconds, UTC.
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Record = tuple[str, str, int, int]  # holder, renewTime, leaseDurationSeconds, leaseTransitions


def _record(lease: dict[str, Any]) -> Record:
    spec = lease.get("spec") or {}
    return (
        str(spec.get("holderIdentity") or ""),
        str(spec.get("renewTime") or ""),
        int(spec.get("leaseDurationSeconds") or 0),
        int(spec.get("leaseTransitions") or 0),
    )


class Elector:
    """The Lease protocol, synchronous (the kubernetes client is): the standby's attempts run in a thread
    pool, the leader's renewals in a thread of their own, so a stalled event loop (a slow TLS context, a
    CPU-starved burst of work) never delays a renewal; the fence still refuses every request once the
    deadline passes, whatever the loop is doing."""

    def __init__(
        self, config: ElectionConfig, api: client.ApiClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        api.user_agent = user_agent()
        # One try per request: urllib3's default resends a timed-out request, which would stretch one renewal
        # attempt past the renew deadline.
        api.rest_client.pool_manager.connection_pool_kw["retries"] = False
        # Raw JSON in and out (_preload_content=False): the Lease is handled as the API server returns it.
        self.leases: Any = client.CoordinationV1Api(api)
        self.clock = clock
        self._observed: Record | None = None
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None  # as we last wrote it, while we hold it
        self.leading = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lease")
        self._stop_holding = threading.Event()
        self._holder: threading.Thread | None = None
        # Until when the last confirmed renewal keeps us leader. The fence follows it, but may close earlier
        # on purpose (shutdown), which is no reason to stop renewing while the work drains.
        self.valid_until = -math.inf

    def remaining(self) -> float:
        return self.valid_until - self.clock()

    def _confirmed(self, began: float) -> None:
        self.valid_until = began + self.config.renew_deadline
        FENCE.open_until(self.valid_until)

    # -- the API server -----------------------------------------------------------------------------

    def _timeout(self) -> float:
        return max(0.5, min(5.0, self.config.renew_deadline / 2))

    def _get(self) -> dict[str, Any] | None:
        try:
            response = self.leases.read_namespaced_lease(
                self.config.name, self.config.namespace, _preload_content=False, _request_timeout=self._timeout()
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = json.loads(response.data)
        return result

    def _write(self, lease: dict[str, Any], create: bool, request_timeout: float | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": request_timeout or self._timeout()}
        if create:
            response = self.leases.create_namespaced_lease(self.config.namespace, lease, **kwargs)
        else:
            response = self.leases.replace_namespaced_lease(self.config.name, self.config.namespace, lease, **kwargs)
        result: dict[str, Any] = json.loads(response.data)
        return result

    # -- standby ------------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """One attempt: True when this replica now holds the lease (and the fence is open)."""
        began = self.clock()
        lease = self._get()
        now = self.clock()
        cfg = self.config
        spec_new: dict[str, Any] = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": int(cfg.lease_duration),
            "acquireTime": _now(),
            "renewTime": _now(),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": {**spec_new, "leaseTransitions": 0},
            }
            return self._won(began, body, create=True, previous="nobody")
        record = _record(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        holder, _, duration, transitions = record
        if holder and holder != cfg.identity:
            if now - self._observed_at < (duration or cfg.lease_duration):
                return False  # held, and renewed within a lease duration as far as we have seen
            log.info(
                "leader lease %s/%s: %s has not renewed for %.1f s; taking over",
                cfg.namespace,
                cfg.name,
                holder,
                now - self._observed_at,
            )
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {**lease["metadata"]},
            "spec": {**(lease.get("spec") or {}), **spec_new, "leaseTransitions": transitions + 1},
        }
        return self._won(began, body, create=False, previous=holder or "nobody (released)")

    def _won(self, began: float, body: dict[str, Any], create: bool, previous: str) -> bool:
        try:
            self._lease = self._write(body, create)
        except client.ApiException as exc:
            if exc.status == 409:  # another replica was faster, or the holder renewed: look again later
                return False
            raise
        self._confirmed(began)
        self.leading = True
        log.info(
            "leader lease %s/%s acquired by %s (previous holder: %s)",
            self.config.namespace,
            self.config.name,
            self.config.identity,
            previous,
        )
        return True

    async def acquire(self) -> None:
        """Until this replica leads; API errors are logged and retried (a standby has time)."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                if await loop.run_in_executor(self._pool, self.try_acquire):
                    return
                failures = 0
            except Exception as exc:
                failures += 1
                # First failure and then every 30th: an unreachable API server must not flood the log.
                if failures % 30 == 1:
                    log.warning("leader lease %s/%s: %s", self.config.namespace, self.config.name, _why(exc))
            await asyncio.sleep(self.config.retry_period * random.uniform(1.0, 1.2))

    # -- leader -------------------------------------------------------------------------------------

    def renew(self) -> bool | None:
        """True: renewed. False: not confirmed (try again until the deadline). None: someone else holds it."""
        assert self._lease is not None
        began = self.clock()
        remaining = self.remaining()
        if remaining <= 0:
            return False
        body = {**self._lease, "spec": {**self._lease["spec"], "renewTime": _now()}}
        try:
            timeout = max(0.2, min(self._timeout(), remaining))
            self._lease = self._write(body, create=False, request_timeout=timeout)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            # Changed since our last write: still ours (someone edited labels) or taken over.
            current = self._get()
            if current is None or _record(current)[0] != self.config.identity:
                return None
            self._lease = current
            return self.renew()
        self._confirmed(began)
        return True

    def hold(self) -> str | None:
        """Renew every retry period until the lease is lost (returns why) or stop_holding() (None)."""
        cfg = self.config
        while not self._stop_holding.wait(cfg.retry_period):
            try:
                renewed = self.renew()
            except Exception as exc:
                renewed = False
                log.warning("leader lease %s/%s: renewal failed: %s", cfg.namespace, cfg.name, _why(exc))
            if renewed is None:
                return "another replica holds the lease"
            if not renewed and self.remaining() <= 0:
                return f"no renewal confirmed within the renew deadline ({cfg.renew_deadline:g} s)"
        return None

    def hold_in_thread(self, lost: Callable[[str], None]) -> None:
        """Renewals in one thread; a watchdog in another acts at the deadline even while a renewal hangs
        (a partition: the request neither answers nor fails)."""

        def renewing() -> None:
            why = self.hold()
            if why is not None:
                lost(why)

        def watching() -> None:
            while not self._stop_holding.wait(max(0.02, min(self.remaining(), self.config.retry_period))):
                if self.remaining() <= 0:
                    lost(f"no renewal confirmed within the renew deadline ({self.config.renew_deadline:g} s)")
                    return

        self._holder = threading.Thread(target=renewing, name="leader-renew", daemon=True)
        self._holder.start()
        threading.Thread(target=watching, name="leader-watchdog", daemon=True).start()

    def stop_holding(self) -> None:
        self._stop_holding.set()
        if self._holder is not None:
            self._holder.join()

    def release(self) -> None:
        """Hand the lease back (shutdown): a standby takes it at its next look instead of a lease duration
        later. Only after the fence is closed, so the two never act at once."""
        if self._lease is None or not self.leading:
            return
        FENCE.close()
        self.leading = False
        spec = {**self._lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": _now()}
        spec.pop("acquireTime", None)
        try:
            self._write({**self._lease, "spec": spec}, create=False)
        except Exception as exc:  # it will expire on its own
            log.warning("leader lease %s/%s: not released: %s", self.config.namespace, self.config.name, _why(exc))
            return
        log.info("leader lease %s/%s released by %s", self.config.namespace, self.config.name, self.config.identity)


def _why(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    return f"{status} {reason}" if status else f"{type(exc).__name__}: {exc}"


def _set_role(role: str) -> None:
    health.HEALTH.role = role
    metrics.LEADER.set(1 if role == "leader" else 0)


def _exit_now(code: int) -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no cleanup: nothing of a deposed leader may run on (kopf's shutdown would write)


def _lost(config: ElectionConfig, why: str) -> None:
    """Fence, say so, exit: from the renewal thread, so a stalled event loop cannot keep a deposed leader."""
    FENCE.close()
    _set_role("standby")
    log.error(
        "leader lease %s/%s lost by %s: %s; fenced (no further cloud call or write), exiting to restart as a standby",
        config.namespace,
        config.name,
        config.identity,
        why,
    )
    _exit_now(EXIT_LOST)


Operate = Callable[[asyncio.Event, asyncio.Event], Awaitable[None]]  # (ready_flag, stop_flag) -> kopf


async def run(elector: Elector, operate: Operate, stop_acting: Callable[[], Awaitable[None]]) -> int:
    """Standby until the lease is ours, then the operator; fence and exit the moment it is lost.

    On SIGTERM the leader cancels its work (stop_acting), closes the fence, hands the lease back and only
    then lets kopf shut down at its own pace: the next leader starts a retry period later, not after
    kopf's graceful exit."""
    FENCE.enforce()
    _set_role("standby")
    cfg = elector.config
    log.info("standby: waiting for the leader lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
    await health.serve()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    acquiring = asyncio.create_task(elector.acquire(), name="leader-acquire")
    health.HEALTH.election_task = acquiring
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not acquiring.done():
        acquiring.cancel()
        log.info("standby: stopping without having led")
        await health.shutdown()
        return 0
    acquiring.result()
    health.HEALTH.election_task = None
    elector.hold_in_thread(lambda why: _lost(cfg, why))
    _set_role("leader")

    ready, stop_kopf = asyncio.Event(), asyncio.Event()
    handing: list[asyncio.Task[None]] = []

    async def hand_over() -> None:
        log.info("stopping: cancelling work, then handing the leader lease over")
        try:
            await stop_acting()
        finally:
            FENCE.close()
            await loop.run_in_executor(None, elector.stop_holding)
            await loop.run_in_executor(None, elector.release)
            stop_kopf.set()

    def on_signal() -> None:
        if not handing:
            handing.append(loop.create_task(hand_over(), name="hand-over"))

    async def take_signals() -> None:
        await ready.wait()  # kopf installs its own handlers while it starts; ours replace them once it runs
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)

    if stop.is_set():
        on_signal()  # SIGTERM arrived while acquiring
    # Created before kopf starts: kopf cancels at its exit only the tasks that appeared while it ran.
    signals = asyncio.create_task(take_signals(), name="leader-signals")
    stopping.cancel()
    failed = False
    try:
        await operate(ready, stop_kopf)
    except Exception:
        if not handing:  # while handing over, refused requests are expected to end kopf's tasks
            log.exception("the operator stopped with an error")
            failed = True
    signals.cancel()
    if handing:
        await handing[0]
    else:
        if elector.remaining() <= 0:
            # kopf may stop first when the fence refuses its requests: the deadline passed, the lease is lost.
            _lost(cfg, f"no renewal confirmed within the renew deadline ({cfg.renew_deadline:g} s)")
        FENCE.close()  # kopf stopped by itself (an error, or a signal before it was ready): hand over now
        await loop.run_in_executor(None, elector.stop_holding)
        await loop.run_in_executor(None, elector.release)
    _set_role("standby")
    await health.shutdown()
    return 1 if failed else 0


# -- kopf's own API traffic goes through the fence too (Events it posts, its watches) -------------------


async def _fence_request(_: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
    # Writes only (Events, any patch kopf might make): a deposed leader's watches and discovery reads change
    # nothing, and refusing them would only turn its last moments into kopf tracebacks.
    if params.method not in ("GET", "HEAD", "OPTIONS"):
        FENCE.check(f"Kubernetes {params.method} {params.url.path}")


def fenced_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """The session kopf would build for these credentials, plus the fence on every request."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_fence_request)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers={**info.as_http_headers(), "User-Agent": user_agent()},
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        trace_configs=[trace],
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )


def register_fenced_login() -> None:
    """Replaces kopf's default login (which it uses only while no login handler is registered)."""

    @kopf.on.login(id="fenced-login")
    async def _login(**kwargs: Any) -> kopf.AiohttpSession | None:  # async: the session binds to kopf's loop
        info = kopf.login_via_client(**kwargs)
        return fenced_session(info) if info is not None else None
