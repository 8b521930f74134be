"""EcsCloud resources: one client (and one shared rate limit) per cloud, and the cloud's Ready condition.

A cloud is Ready when its credentials Secret is readable and complete and its endpoint answered. A
credentials rejection seen by any attachment marks the cloud not Ready (CredentialsRejected) until the
Secret or the EcsCloud changes, so that a broken key costs one refused call per retry period, not a storm.

A spec change replaces the cloud's state (a new ``Cloud``); a check still running for the spec it replaced
finishes unheard: only the current ``Cloud``'s verdict is ever written. Status writes of one cloud take
turns and write the verdict of the cloud that is current when the write starts, and they compare it with
the status the API server last showed (its watch events), not only with the last write: an older write
landing last, or anyone else's, is written over, whatever memory believes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from kubernetes.client import ApiException

from ecs_nic_operator import conditions
from ecs_nic_operator.cloud import CredentialsError, EcsClient, NetworkClient, TokenBucket, auth_from_secret
from ecs_nic_operator.cloud.auth import credentials_renew_in
from ecs_nic_operator.cloud.client import ClientOptions
from ecs_nic_operator.cloud.errors import AuthError, CloudError
from ecs_nic_operator.cloud.transport import ProxyRouter, ssl_context
from ecs_nic_operator.cloud.urls import require_secure_url
from ecs_nic_operator.conditions import Condition, Reason
from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Gone, Kube
from ecs_nic_operator.metrics import CLOUD_CHECKS, CloudCallMetrics
from ecs_nic_operator.resources import CloudSpec

log = logging.getLogger("ecs_nic_operator.clouds")

PENDING = "Pending"  # not checked yet: no verdict to write


@dataclass
class Cloud:
    spec: CloudSpec
    body_ref: dict[str, Any]
    status: dict[str, Any]
    client: EcsClient | None = None
    network: NetworkClient | None = None  # spec.networkEndpoint's port API (issue 13), same auth and limiter
    credentials_digest: str = ""
    ready: bool = False
    reason: str = PENDING
    message: str = "not checked yet"
    failures: int = 0
    recheck: asyncio.TimerHandle | None = None
    limiter: TokenBucket | None = None
    # Built once per spec (a new spec is a new Cloud): loading the CAs and opening a client cost
    # milliseconds of the event loop each, which under load stretched to seconds.
    tls: ssl.SSLContext | None = None
    probe: httpx.AsyncClient | None = None
    written: int = 0  # resourceVersion of our last status write: older watch events tell us nothing newer
    closed: bool = False
    _checking: asyncio.Lock = field(default_factory=asyncio.Lock)

    def allows(self, namespace_labels: dict[str, str]) -> bool:
        selector = self.spec.namespace_selector
        if not selector:
            return True
        for key, value in (selector.get("matchLabels") or {}).items():
            if namespace_labels.get(key) != value:
                return False
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
            present = key in namespace_labels
            if op == "In" and (not present or namespace_labels[key] not in values):
                return False
            if op == "NotIn" and present and namespace_labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


class Clouds:
    def __init__(self, kube: Kube, settings: Settings, on_change: Callable[[str], None]) -> None:
        self._kube = kube
        self._settings = settings
        self._on_change = on_change  # requeue the attachments of a cloud whose readiness changed
        self._clouds: dict[str, Cloud] = {}
        self._writing: dict[str, asyncio.Lock] = {}  # by name, not by Cloud: a spec change must wait its turn
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, name: str) -> Cloud | None:
        return self._clouds.get(name)

    def useful_in_flight(self) -> int:
        """Calls every cloud's rate limit keeps busy at its observed latency (sizes the work queue)."""
        return sum(c.limiter.useful_in_flight() for c in self._clouds.values() if c.limiter is not None)

    def observe(self, body: dict[str, Any], deleted: bool = False) -> None:
        name = body.get("metadata", {}).get("name", "")
        if deleted:
            cloud = self._clouds.pop(name, None)
            self._writing.pop(name, None)
            if cloud is not None:
                self._spawn(self._close(cloud))
                self._on_change(name)
            return
        spec = CloudSpec.from_body(body, self._settings.default_qps, self._settings.default_burst)
        cloud = self._clouds.get(name)
        if cloud is not None and cloud.spec == spec:
            self._status_seen(cloud, body)
            return
        ref = {
            "apiVersion": body.get("apiVersion"),
            "kind": "EcsCloud",
            "metadata": {"name": name, "uid": body.get("metadata", {}).get("uid")},
        }
        new = Cloud(spec=spec, body_ref=ref, status=dict(body.get("status") or {}))
        if cloud is not None:
            new.limiter = cloud.limiter if (cloud.spec.qps, cloud.spec.burst) == (spec.qps, spec.burst) else None
            self._spawn(self._close(cloud))
        self._clouds[name] = new
        self._spawn(self.check(name))

    def _status_seen(self, cloud: Cloud, body: dict[str, Any]) -> None:
        """The API server's status of an unchanged spec (often our own write coming back). If it is not the
        verdict we hold (an older write landed last, or someone else wrote), write ours again."""
        version = str(body.get("metadata", {}).get("resourceVersion") or "")
        if version.isdigit() and int(version) < cloud.written:
            return  # older than our last write: that write already said what we hold
        cloud.status = dict(body.get("status") or {})
        if cloud.reason != PENDING and not self._shows(cloud):
            log.info(
                "EcsCloud %s status is not the current verdict (%s); writing it again", cloud.spec.name, cloud.reason
            )
            self._spawn(self._write_status(cloud.spec.name))

    def _current(self, cloud: Cloud) -> bool:
        return not cloud.closed and self._clouds.get(cloud.spec.name) is cloud

    def credentials_rejected(self, name: str, used: EcsClient | None, message: str) -> None:
        """A call made with ``used`` was refused (401). Only the client of the current credentials counts: a
        late refusal of a request signed with keys rotated out since says nothing about the new ones."""
        cloud = self._clouds.get(name)
        if cloud is None or not cloud.ready or used is None or cloud.client is not used:
            return
        self._spawn(self._set(cloud, False, Reason.CREDENTIALS_REJECTED, message, retry=True))

    async def check(self, name: str) -> None:
        """Read the Secret, build the client, ask the endpoint; set Ready accordingly. Never raises: whatever
        goes wrong is the cloud's condition, and the check is tried again later."""
        cloud = self._clouds.get(name)
        if cloud is None:
            return
        try:
            await self._check(cloud)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("checking EcsCloud %s failed: %s", name, exc, exc_info=True)
            try:
                await self._set(cloud, False, Reason.CHECK_FAILED, f"checking the cloud failed: {exc}", retry=True)
            except Exception:
                log.exception("could not record the failed check of EcsCloud %s", name)
        # Counted once the verdict is written (or dropped): a count that moved says its write is done.
        CLOUD_CHECKS.labels(name, cloud.reason if self._current(cloud) else "superseded").inc()

    async def _check(self, cloud: Cloud) -> None:
        async with cloud._checking:
            spec = cloud.spec
            try:
                require_secure_url(spec.endpoint, "spec.endpoint")
                if cloud.tls is None:
                    cloud.tls = ssl_context(spec.ca_bundle)
                tls = cloud.tls
            except ValueError as exc:  # CaBundleError included
                await self._set(cloud, False, Reason.ENDPOINT_INVALID, str(exc), retry=False)
                return
            try:
                data = await self._kube.secret_data(spec.secret_namespace, spec.secret_name)
            except Gone:
                await self._set(
                    cloud,
                    False,
                    Reason.SECRET_NOT_FOUND,
                    f"Secret {spec.secret_namespace}/{spec.secret_name} not found",
                    retry=True,
                )
                return
            except ApiException as exc:
                # 403 (no Role to read that namespace's Secrets) or an API hiccup: say so, look again later.
                why = (
                    "the operator may not read it (add a Role granting get on secrets there)"
                    if exc.status == 403
                    else (f"reading it failed: {exc.status} {exc.reason}")
                )
                reason = Reason.SECRET_FORBIDDEN if exc.status == 403 else Reason.SECRET_NOT_FOUND
                await self._set(
                    cloud, False, reason, f"Secret {spec.secret_namespace}/{spec.secret_name}: {why}", retry=True
                )
                return
            except ValueError as exc:  # a value that is not text
                await self._set(cloud, False, Reason.CREDENTIALS_INVALID, str(exc), retry=True)
                return
            digest = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()
            if cloud.client is None or digest != cloud.credentials_digest:
                try:
                    auth = auth_from_secret(spec.credentials_type, data, spec.project_id)
                    credentials_renew_in(data, time.time())  # a malformed expiresAt is a credentials problem
                except CredentialsError as exc:
                    await self._set(cloud, False, Reason.CREDENTIALS_INVALID, str(exc), retry=True)
                    return
                old = cloud.client
                if cloud.limiter is None:
                    cloud.limiter = TokenBucket(spec.qps, spec.burst)
                shared: ClientOptions = {
                    "limiter": cloud.limiter,
                    "timeout": self._settings.cloud_timeout,
                    "observer": CloudCallMetrics(),
                    "verify": tls,
                }
                # Each reconcile has at most one call out, so the cap on reconciles bounds connections too.
                compute: ClientOptions = {**shared, "max_connections": max(self._settings.workers, 50)}
                cloud.client = EcsClient(spec.endpoint, spec.project_id, auth, api=spec.api, **compute)
                # -- issue 13: the port API, built with the compute client (same auth, limiter, TLS) --
                old_network = cloud.network
                cloud.network = None
                if spec.network_endpoint:
                    cloud.network = NetworkClient(spec.network_endpoint, auth, **shared)
                if old_network is not None:
                    await old_network.aclose()
                # -- end issue 13 --
                cloud.credentials_digest = digest
                if old is not None:
                    await old.aclose()
                if not self._current(cloud):  # replaced (and closed) while the Secret was read
                    await cloud.client.aclose()
                    return
            elif not cloud.ready and cloud.reason == Reason.CREDENTIALS_REJECTED and await self._still_rejected(cloud):
                # Same Secret, and an authenticated call is still refused: stay not Ready until it changes.
                await self._set(cloud, False, cloud.reason, cloud.message, retry=True)
                return
            if cloud.limiter is not None:
                await cloud.limiter.acquire()  # the probe is a call to the cloud too: it counts against the ceiling
            problem = await self._probe(cloud, tls)
            if problem:
                await self._set(cloud, False, Reason.ENDPOINT_UNREACHABLE, problem, retry=True)
                return
            await self._set(cloud, True, Reason.CONNECTED, f"credentials read; {spec.endpoint} answered", retry=False)
            renew_in = credentials_renew_in(data, time.time())
            if renew_in is not None:
                # Temporary credentials: read the Secret again before they expire (its owner rotates it).
                cloud.recheck = asyncio.get_running_loop().call_later(
                    renew_in, lambda: self._spawn(self.check(cloud.spec.name))
                )

    async def _still_rejected(self, cloud: Cloud) -> bool:
        """The version probe needs no credentials, so it cannot tell whether a refusal still holds: ask for a
        server that does not exist with the credentials. A 401 says "still refused"; anything else (the
        expected 404, a 200) says the credentials are accepted again (a refusal may have been the cloud's
        hiccup, or meant keys rotated out since)."""
        if cloud.client is None:
            return True
        try:
            await cloud.client.show_server("00000000-0000-4000-8000-000000000000")
        except AuthError:
            return True
        except CloudError:
            return False
        return False

    async def _probe(self, cloud: Cloud, tls: ssl.SSLContext) -> str | None:
        # The version document needs no credentials and costs the cloud nothing that is rate limited.
        # Same TLS trust and proxy as the API calls, so a private CA or a proxy does not fail the probe alone.
        endpoint = cloud.spec.endpoint
        if cloud.probe is None:
            transport = ProxyRouter(verify=tls, limits=httpx.Limits(max_connections=1))
            cloud.probe = httpx.AsyncClient(
                transport=transport, timeout=self._settings.cloud_timeout, follow_redirects=False
            )
        try:
            response = await cloud.probe.get(f"{endpoint}/v2.1/")
        except httpx.HTTPError as exc:
            return f"{endpoint} did not answer: {type(exc).__name__}: {exc}"
        finally:
            if cloud.closed:  # replaced while it probed: _close may have run before the client existed
                await cloud.probe.aclose()
        if response.status_code >= 500:
            return f"{endpoint}/v2.1/ answered {response.status_code}"
        return None

    async def _set(self, cloud: Cloud, ready: bool, reason: str, message: str, retry: bool) -> None:
        if not self._current(cloud):
            # A check of a spec replaced since: its verdict is about a cloud that no longer exists.
            log.info(
                "dropping the verdict %s of EcsCloud %s generation %s: its spec changed since",
                reason,
                cloud.spec.name,
                cloud.spec.generation,
            )
            return
        changed = (cloud.ready, cloud.reason, cloud.message) != (ready, reason, message)
        cloud.ready, cloud.reason, cloud.message = ready, reason, message
        cloud.failures = 0 if ready else cloud.failures + 1
        if cloud.recheck is not None:
            cloud.recheck.cancel()
            cloud.recheck = None
        if retry:
            delay = min(self._settings.spec_retry, 5.0 * 2 ** min(cloud.failures, 10)) * random.uniform(0.8, 1.2)
            cloud.recheck = asyncio.get_running_loop().call_later(
                delay, lambda: self._spawn(self.check(cloud.spec.name))
            )
        news = changed or cloud.status.get("observedGeneration") != cloud.spec.generation
        await self._write_status(cloud.spec.name)
        if news and not ready:
            await self._event(cloud, "Warning", reason, message)
        if changed:
            self._on_change(cloud.spec.name)

    def _shows(self, cloud: Cloud) -> bool:
        """Whether the status as last seen or written says the verdict this cloud holds."""
        shown = conditions.get(cloud.status, conditions.READY) or {}
        return (
            cloud.status.get("api") == cloud.spec.api
            and cloud.status.get("observedGeneration") == cloud.spec.generation
            and (
                shown.get("status"),
                shown.get("reason"),
                shown.get("message"),
                shown.get("observedGeneration"),
            )
            == ("True" if cloud.ready else "False", cloud.reason, cloud.message[:1024], cloud.spec.generation)
        )

    async def _write_status(self, name: str) -> None:
        """Write the current verdict of cloud ``name`` unless the status already shows it. One write per cloud
        at a time, and the cloud is looked up once the turn comes: whatever check asked, the verdict written
        is the newest, so a slow older write can never be the last word."""
        lock = self._writing.setdefault(name, asyncio.Lock())
        async with lock:
            cloud = self._clouds.get(name)
            if cloud is None or cloud.reason == PENDING or self._shows(cloud):
                return
            wanted = conditions.merge(
                cloud.status.get("conditions") or [],
                [Condition(conditions.READY, cloud.ready, cloud.reason, cloud.message)],
                cloud.spec.generation,
            )
            status = {"observedGeneration": cloud.spec.generation, "api": cloud.spec.api, "conditions": wanted}
            try:
                written = await self._kube.patch_cloud_status(name, status)
            except Exception as exc:  # the next check, or the next watch event, writes it again
                log.warning("could not write EcsCloud %s status: %s", name, exc)
                return
            cloud.status, cloud.written = status, max(cloud.written, written)

    async def _event(self, cloud: Cloud, type_: str, reason: str, message: str) -> None:
        ref = cloud.body_ref
        involved = {
            "apiVersion": ref.get("apiVersion"),
            "kind": "EcsCloud",
            "name": cloud.spec.name,
            "uid": (ref.get("metadata") or {}).get("uid"),
        }
        try:
            # A cluster-scoped object's Events live in "default" with an empty involvedObject.namespace (the API
            # server accepts no other namespace for them), which is where `kubectl describe ecscloud` looks.
            await self._kube.post_event("default", involved, type_, reason, message)
        except Exception as exc:  # Events are best effort
            log.warning("could not post an Event about EcsCloud %s: %s", cloud.spec.name, exc)

    async def resync_forever(self, period: float) -> None:
        """Re-check every cloud about once a period (jittered, so replicas and restarts do not align)."""
        while True:
            await asyncio.sleep(period * random.uniform(0.9, 1.1))
            try:
                await self.resync()
            except Exception:  # check() records its own failures; nothing may end this loop
                log.exception("cloud resync failed")

    async def resync(self) -> None:
        """Periodic re-read of every cloud's Secret (rotations) and endpoint."""
        for name in list(self._clouds):
            await self.check(name)

    async def close(self) -> None:
        for cloud in self._clouds.values():
            await self._close(cloud)
        for task in list(self._tasks):
            task.cancel()

    async def _close(self, cloud: Cloud) -> None:
        cloud.closed = True
        if cloud.recheck is not None:
            cloud.recheck.cancel()
        if cloud.client is not None:
            await cloud.client.aclose()
        if cloud.network is not None:
            await cloud.network.aclose()
        if cloud.probe is not None:
            await cloud.probe.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
