"""Temporary AK/SK on the real stack: requests carry the security token, signed, and a Secret rotated by its owner
before the old credentials expire is read again before they do, so the cloud never refuses a call."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.integration.faults.conftest import (
    ACCESS_KEY,
    SECRET_KEY,
    Stack,
    apply_cloud,
    cloud_condition,
    delete_cloud,
)
from tests.integration.kube import wait_for

SIM_BEHAVIOUR = {"dialect": "huawei"}
# Slow periodic re-reads: only the credentials' own expiry can make the operator read the Secret again in time.
OPERATOR_ARGS = ["--resync-period", "300"]
LIFETIME = 30.0


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_temporary_credentials_are_signed_and_renewed_before_expiry(stack: Stack) -> None:
    kube, sim = stack.kube, stack.sim
    ns = stack.new_namespace("flt-temp")
    server = stack.new_server()
    name = f"{stack.cloud}-temporary"
    sim.set_credentials(securityToken="security-token-1")
    expires = time.time() + LIFETIME
    secret = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY, "securityToken": "security-token-1"}
    apply_cloud(kube, name, sim.url, kind="AKSK", secret={**secret, "expiresAt": rfc3339(expires)})
    try:
        wait_for(lambda: (c := cloud_condition(kube, name)) and c["status"] == "True", timeout=30, what="Ready")
        stack.create(ns, "first", {**stack.spec(server), "cloudRef": {"name": name}})
        stack.wait_ready(ns, "first", timeout=30)  # the cloud accepted the signed X-Security-Token

        # The Secret's owner rotates it early; the old credentials stay valid until they expire.
        later = time.time() + 3600
        rotated = {**secret, "securityToken": "security-token-2", "expiresAt": rfc3339(later)}
        apply_cloud(kube, name, sim.url, kind="AKSK", secret=rotated)
        # The cloud stops accepting the old token at its expiry: the scenario's clock, not a wait for a state.
        time.sleep(max(0.0, expires - time.time()))
        sim.set_credentials(securityToken="security-token-2")

        stack.create(ns, "second", {**stack.spec(server), "cloudRef": {"name": name}})
        stack.wait_ready(ns, "second", timeout=30)
        assert sim.state()["refusals"].get("APIGW.0301", 0) == 0, "a call went out with expired credentials"
        assert cloud_condition(kube, name)["status"] == "True"  # type: ignore[index]
    finally:
        for obj in ("first", "second"):
            stack.delete(ns, obj)
        wait_for(lambda: sim.ports_of(server) == [], timeout=30, what="NICs detached")
        delete_cloud(kube, name)
