"""The demo's clean-up on a cluster it does not own: bounded, and it says what it could not remove."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_nic_operator.devenv import demo

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
STUCK = {
    "kind": "EcsNicAttachment",
    "metadata": {
        "namespace": "demo",
        "name": "app-data",
        "deletionTimestamp": "2026-12-01T00:00:00Z",
        "finalizers": ["ecsnic.io/finalizer"],
    },
}
CLOUD = {"kind": "EcsCloud", "metadata": {"name": "default"}}


def test_a_sample_still_finalizing_keeps_its_ecscloud_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[str, ...], float | None]] = []

    def kubectl(_cluster: demo.Cluster, *args: str, timeout: float | None = None, **_: Any) -> str:
        calls.append((args, timeout))
        if args[:2] == ("get", "-f"):
            found = {"attachments.yaml": [STUCK], "ecscloud.yaml": [CLOUD]}.get(Path(args[2]).name, [])
            return json.dumps({"kind": "List", "items": found}) if found else ""
        return ""

    monkeypatch.setattr(demo, "kubectl", kubectl)
    left = demo.clean_up(demo.Cluster(Path("kubeconfig"), "", owned=False), EXAMPLES)

    assert left == [
        "EcsNicAttachment demo/app-data (Terminating: waits for finalizers ['ecsnic.io/finalizer'])",
        "EcsCloud default",
    ]
    deletes = [args for args, _ in calls if args[0] == "delete"]
    # Without its EcsCloud the operator could never detach app-data's NIC: the cloud stays, and so does the
    # namespace that holds app-data.
    assert not any(str(EXAMPLES / "ecscloud.yaml") in args or "namespace" in args for args in deletes), deletes
    assert any(str(EXAMPLES / "node.yaml") in args for args in deletes), deletes
    # Bounded: every call has a deadline, and every delete waits for a bounded time.
    assert all(timeout is not None for _, timeout in calls), calls
    assert all(any(a.startswith("--timeout=") for a in args) for args in deletes), deletes
