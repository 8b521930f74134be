"""Every Kubernetes read and write the reconcilers make, in one place, so they can be counted and kept few.

The kubernetes client is synchronous; calls run in a small thread pool so the event loop never blocks.
Writes are merge patches carrying the resourceVersion we decided on when that matters (optimistic
concurrency), or JSON patches with a test when removing our finalizer, so a concurrent user edit is never
overwritten.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client, config

from ecs_nic_operator import GROUP, VERSION
from ecs_nic_operator.config import FINALIZER, INTENT_ANNOTATION
from ecs_nic_operator.fence import FENCE

PLURAL = "ecsnicattachments"
CLOUD_PLURAL = "ecsclouds"


class Conflict(Exception):
    """The object changed since we looked (409 on a guarded write): look again before deciding."""


class Gone(Exception):
    """The object no longer exists."""


# Kubernetes calls at once. The client is synchronous, so each call holds a thread while the API server
# answers; during a wave of 1,000 attachments at 47.5 cloud calls/s (3 writes and 2 Events each, plus reads)
# every sample of the benchmark operator found all 8 threads of the old pool waiting on the API server.
# Waiting threads cost no CPU; each keeps one connection (the pool of connections is sized to match).
KUBE_THREADS = 32

# urllib3 would retry a GET that timed out on the next pooled connection, which a dropped NAT entry froze as
# well: up to four read timeouts for one call. A call that times out fails at once instead (the reconcile
# retries it), and Kube drops every pooled connection with it, so the retry opens a fresh one.
NO_READ_RETRIES = urllib3.util.Retry(total=3, connect=3, read=0, redirect=0, status=0, other=0)
# What says the connection under a call is dead, rather than the API server's answer.
DEAD_CONNECTION = (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)


def load_config() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = KUBE_THREADS
    configuration.retries = NO_READ_RETRIES
    return client.ApiClient(configuration)


@dataclass
class Kube:
    api: client.ApiClient
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(KUBE_THREADS, thread_name_prefix="kube")
    )
    writes: Counter[str] = field(default_factory=Counter)
    # (connect, read) seconds for every call: with a handful of threads, one black-holed connection without
    # a timeout would freeze every Kubernetes write behind it.
    timeout: tuple[float, float] = (5.0, 30.0)
    page_size: int = 500
    _ttl_cache: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)

    def drop_connections(self) -> None:
        """Close every pooled connection: after one went silent the others, opened over the same path, are
        likely dead too, and each would cost a whole read timeout before the pool replaced it."""
        rest = getattr(self.api, "rest_client", None)
        manager = getattr(rest, "pool_manager", None)
        if manager is not None:
            manager.clear()

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        kwargs.setdefault("_request_timeout", self.timeout)

        def call() -> Any:
            # Checked in the pool thread, after the queue wait: a deposed leader's queued calls never leave.
            FENCE.check(f"Kubernetes {getattr(fn, '__name__', 'call')}")
            return fn(*args, **kwargs)

        try:
            return await loop.run_in_executor(self.pool, call)
        except DEAD_CONNECTION:
            self.drop_connections()
            raise
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(str(exc.reason)) from None
            if exc.status == 404:
                raise Gone(str(exc.reason)) from None
            raise

    # -- EcsNicAttachment writes -------------------------------------------------------------------

    async def record_intent(
        self, namespace: str, name: str, resource_version: str, finalizers: tuple[str, ...], intent: str
    ) -> dict[str, Any]:
        """Finalizer and attach intent in one guarded write, durable before the attach call is made."""
        wanted = list(finalizers) if FINALIZER in finalizers else [*finalizers, FINALIZER]
        patch = {
            "metadata": {
                "resourceVersion": resource_version,
                "finalizers": wanted,
                "annotations": {INTENT_ANNOTATION: intent},
            }
        }
        self.writes["attachment"] += 1
        result: dict[str, Any] = await self._run(
            self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name, patch
        )
        return result

    async def add_finalizer(
        self, namespace: str, name: str, resource_version: str, finalizers: tuple[str, ...]
    ) -> dict[str, Any]:
        patch = {"metadata": {"resourceVersion": resource_version, "finalizers": [*finalizers, FINALIZER]}}
        self.writes["attachment"] += 1
        result: dict[str, Any] = await self._run(
            self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name, patch
        )
        return result

    async def remove_finalizer(self, namespace: str, name: str, finalizers: tuple[str, ...]) -> None:
        if FINALIZER not in finalizers:
            return
        index = finalizers.index(FINALIZER)
        patch = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        self.writes["attachment"] += 1
        try:
            await self._run(
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                _content_type="application/json-patch+json",
            )
        except Gone:
            return
        except client.ApiException as exc:
            # 422: the test failed because the list moved under us; the caller looks again.
            if exc.status == 422:
                raise Conflict("finalizers changed") from None
            raise

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.writes["attachment_status"] += 1
        result: dict[str, Any] = await self._run(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status},
        )
        return result

    async def post_event(self, namespace: str, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``involved`` (kind, name, uid, apiVersion; a namespace only for namespaced
        objects: a cluster-scoped object's Events must leave it empty, or `kubectl describe` never finds them)."""
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{involved.get('name', 'x')}.", namespace=namespace),
            involved_object=client.V1ObjectReference(
                api_version=involved.get("apiVersion"),
                kind=involved.get("kind"),
                name=involved.get("name"),
                uid=involved.get("uid"),
                namespace=involved.get("namespace") or None,
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            source=client.V1EventSource(component="ecs-nic-operator"),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        self.writes["event"] += 1
        await self._run(self.core.create_namespaced_event, namespace, body)

    async def patch_cloud_status(self, name: str, status: dict[str, Any]) -> int:
        """Returns the resourceVersion the write made (0 if unreadable), to tell older watch events apart."""
        self.writes["cloud_status"] += 1
        written = await self._run(
            self.custom.patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            CLOUD_PLURAL,
            name,
            {"status": status},
        )
        version = str(((written or {}).get("metadata") or {}).get("resourceVersion") or "")
        return int(version) if version.isdigit() else 0

    async def list_attachments(self, namespaces: tuple[str, ...]) -> tuple[list[dict[str, Any]], str]:
        """Every EcsNicAttachment we watch (all namespaces when none are given), straight from the API server,
        a page at a time, with the resourceVersion of the (first) list."""
        items: list[dict[str, Any]] = []
        version = ""
        for namespace in namespaces or (None,):
            token: str | None = None
            while True:
                extra: dict[str, Any] = {"limit": self.page_size}
                if token:
                    extra["_continue"] = token
                if namespace is None:
                    result = await self._run(self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, **extra)
                else:
                    result = await self._run(
                        self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, **extra
                    )
                items += result["items"]
                meta = result.get("metadata") or {}
                version = version or str(meta.get("resourceVersion") or "")
                token = meta.get("continue")
                if not token:
                    break
        return items, version

    # -- reads (cached briefly: they are lookups of slow-changing objects) ----------------------

    async def _cached(self, kind: str, name: str, ttl: float, fetch: Any) -> Any:
        hit = self._ttl_cache.get((kind, name))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        value = await fetch()
        self._ttl_cache[(kind, name)] = (time.monotonic() + ttl, value)
        return value

    def forget(self, kind: str, name: str) -> None:
        self._ttl_cache.pop((kind, name), None)

    async def node_provider_id(self, name: str) -> str | None:
        """Node.spec.providerID, "" when the Node has none; raises Gone when there is no such Node."""

        async def fetch() -> str:
            node = await self._run(self.core.read_node, name)
            return str(node.spec.provider_id or "") if node.spec else ""

        result: str = await self._cached("node", name, 30.0, fetch)
        return result

    async def namespace_labels(self, name: str) -> dict[str, str]:
        async def fetch() -> dict[str, str]:
            ns = await self._run(self.core.read_namespace, name)
            return dict(ns.metadata.labels or {})

        result: dict[str, str] = await self._cached("namespace", name, 30.0, fetch)
        return result

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's values as text; raises ValueError naming the key whose value is not UTF-8."""
        secret = await self._run(self.core.read_namespaced_secret, name, namespace)
        data: dict[str, str] = {}
        for k, v in (secret.data or {}).items():
            try:
                data[k] = base64.b64decode(v).decode()
            except UnicodeDecodeError:
                raise ValueError(f"Secret {namespace}/{name}: the value of {k!r} is not UTF-8 text") from None
        data.update(secret.string_data or {})
        return data

    async def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create a Secret (409 AlreadyExists raises Conflict, a missing namespace Gone)."""
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/name": "ecs-nic-operator"}),
            type="Opaque",
            string_data=data,
        )
        self.writes["secret"] += 1
        await self._run(self.core.create_namespaced_secret, namespace, body)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
