"""A small typed helper over the kubernetes client, for tests that act the way a user would."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client

from ecs_nic_operator import GROUP, VERSION
from ecs_nic_operator.devenv.controlplane import ControlPlane

T = TypeVar("T")


@dataclass
class Kube:
    api_client: client.ApiClient
    control_plane: ControlPlane

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args], env=self.control_plane.env(), input=stdin, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def create_attachment(self, namespace: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EcsNicAttachment",
            "metadata": {"name": name, **meta},
            "spec": spec,
        }
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "ecsnicattachments", body
        )
        return result

    def get_attachment(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "ecsnicattachments", name
        )
        return result

    def list_attachments(self, namespace: str) -> list[dict[str, Any]]:
        result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "ecsnicattachments")
        items: list[dict[str, Any]] = result["items"]
        return items

    def patch_attachment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "ecsnicattachments", name, patch
        )
        return result

    def delete_attachment(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "ecsnicattachments", name)

    def attachment_exists(self, namespace: str, name: str) -> bool:
        try:
            self.get_attachment(namespace, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return None


def wait_for(probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll until probe() returns something truthy; fail with the last value seen after timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")
