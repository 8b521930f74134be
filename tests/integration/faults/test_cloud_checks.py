"""EcsCloud checks racing spec changes and foreign status writes: whatever order the answers come in, the
status a person reads with kubectl ends at the newest generation with the newest verdict.

The resync period is long here, so that the only checks are the ones the test causes (their count, from the
operator's metrics, says when a slow check has finished and written or dropped its verdict)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from tests.integration.faults.conftest import TOKEN, Stack, apply_cloud, delete_cloud
from tests.integration.kube import condition, wait_for

OPERATOR_ARGS = ["--resync-period", "600"]
# The simulator's latency below must stay under the call timeout: the slow check is to answer, late.
OPERATOR_ENV = {"ECSNIC_CLOUD_TIMEOUT": "15"}
LATENCY = 8.0


def cloud(stack: Stack, name: str) -> dict[str, Any]:
    body: dict[str, Any] = stack.kube.custom.get_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", name)
    return body


def checks_done(stack: Stack, name: str) -> int:
    """EcsCloud checks of ``name`` the operator has finished (their status write, if any, done)."""
    pattern = re.compile(r'^ecsnic_cloud_checks_total\{(?=[^}]*cloud="' + re.escape(name) + r'")[^}]*\} (\S+)$')
    return sum(int(float(m.group(1))) for line in stack.op.metrics().splitlines() if (m := pattern.match(line)))


def probes(stack: Stack) -> int:
    return int(stack.sim.state()["calls"].get("GET /v2.1/", 0))


def shows(stack: Stack, name: str, generation: int, ready: str, reason: str) -> dict[str, Any] | None:
    body = cloud(stack, name)
    status = body.get("status") or {}
    cond = condition(body, "Ready") or {}
    seen = (status.get("observedGeneration"), cond.get("observedGeneration"), cond.get("status"), cond.get("reason"))
    return status if seen == (generation, generation, ready, reason) else None


def settles(stack: Stack, name: str, generation: int, ready: str, reason: str, timeout: float) -> dict[str, Any]:
    try:
        return wait_for(lambda: shows(stack, name, generation, ready, reason), timeout=timeout, what=reason)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; EcsCloud {name} status now: {cloud(stack, name).get('status')}") from None


def patch_spec(stack: Stack, name: str, spec: dict[str, Any]) -> int:
    body = stack.kube.custom.patch_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", name, {"spec": spec})
    return int(body["metadata"]["generation"])


def test_a_spec_change_during_a_slow_check_ends_at_the_newest_generation(stack: Stack) -> None:
    """A check of generation 2 is waiting for the endpoint's slow answer when generation 3 (an unusable
    caBundle) arrives and is judged at once. The late Connected of generation 2 must not be the last word."""
    name = f"race-{uuid.uuid4().hex[:6]}"
    apply_cloud(stack.kube, name, stack.sim.url, secret={"token": TOKEN})
    try:
        wait_for(lambda: shows(stack, name, 1, "True", "Connected"), timeout=30, what=f"EcsCloud {name} Connected")
        wait_for(lambda: checks_done(stack, name) >= 1, timeout=10, what="the first check counted")
        done, probed = checks_done(stack, name), probes(stack)
        stack.sim.behaviour(latency=LATENCY)  # every answer, the version document's included
        assert patch_spec(stack, name, {"region": "elsewhere-1"}) == 2
        wait_for(lambda: probes(stack) > probed, timeout=10, interval=0.05, what="generation 2's check probing")
        bad = base64.b64encode(b"not a certificate").decode()
        assert patch_spec(stack, name, {"caBundle": bad}) == 3
        wait_for(
            lambda: shows(stack, name, 3, "False", "EndpointInvalid"),
            timeout=LATENCY - 2,
            interval=0.1,
            what="generation 3 judged while generation 2's check still waits",
        )
        # Generation 2's check answered and is finished: whatever it wrote or dropped is done now.
        wait_for(lambda: checks_done(stack, name) >= done + 2, timeout=LATENCY + 20, what="both checks finished")
        status = settles(stack, name, 3, "False", "EndpointInvalid", timeout=15)
        assert "caBundle" in (condition({"status": status}, "Ready") or {}).get("message", "")
    finally:
        stack.sim.behaviour(latency=0.01)
        delete_cloud(stack.kube, name)


def test_a_status_someone_else_wrote_is_written_over_with_the_current_verdict(stack: Stack) -> None:
    """The verdict did not change, so memory alone would see nothing to write; the API server's status says
    otherwise (an older write that landed last looks just like this)."""
    name = f"foreign-{uuid.uuid4().hex[:6]}"
    apply_cloud(stack.kube, name, stack.sim.url, secret={"token": TOKEN})
    try:
        wait_for(lambda: shows(stack, name, 1, "True", "Connected"), timeout=30, what=f"EcsCloud {name} Connected")
        bad = base64.b64encode(b"not a certificate").decode()
        assert patch_spec(stack, name, {"caBundle": bad}) == 2
        wait_for(lambda: shows(stack, name, 2, "False", "EndpointInvalid"), timeout=30, what="generation 2 judged")
        stale = {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Connected",
                    "message": "an old verdict",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
        stack.kube.custom.patch_cluster_custom_object_status(
            "ecsnic.io", "v1alpha1", "ecsclouds", name, {"status": stale}
        )
        settles(stack, name, 2, "False", "EndpointInvalid", timeout=15)
    finally:
        delete_cloud(stack.kube, name)
