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
from typing import Any

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


def load_config() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


@dataclass
class Kube:
    api: client.ApiClient
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="kube"))
    writes: Counter[str] = field(default_factory=Counter)
    _ttl_cache: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()

        def call() -> Any:
            # Checked in the pool thread, after the queue wait: a deposed leader's queued calls never leave.
            FENCE.check(f"Kubernetes {getattr(fn, '__name__', 'call')}")
            return fn(*args, **kwargs)

        try:
            return await loop.run_in_executor(self.pool, call)
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

    async def patch_cloud_status(self, name: str, status: dict[str, Any]) -> None:
        self.writes["cloud_status"] += 1
        await self._run(
            self.custom.patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            CLOUD_PLURAL,
            name,
            {"status": status},
        )

    async def list_attachments(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every EcsNicAttachment we watch (all namespaces when none are given), straight from the API server."""
        items: list[dict[str, Any]] = []
        if not namespaces:
            result = await self._run(self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
            return list(result["items"])
        for namespace in namespaces:
            result = await self._run(self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
            items += result["items"]
        return items

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
        secret = await self._run(self.core.read_namespaced_secret, name, namespace)
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        data.update(secret.string_data or {})
        return data


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
