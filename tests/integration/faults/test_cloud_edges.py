"""EcsCloud edges: a 404 that names nothing, credentials that are refused, a Secret that is not text, and the
Events a cluster-scoped EcsCloud gets. Each is what a person sees with kubectl, and what the cloud keeps."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from ecs_nic_operator.devenv.processes import SimulatorProcess
from tests.integration.faults.conftest import SYSTEM_NS, TOKEN, Stack, apply_cloud, cloud_condition, delete_cloud, seed
from tests.integration.kube import condition, wait_for

# Credentials problems are retried at the spec pace: short here so the tests see the retries.
OPERATOR_ENV = {"ECSNIC_SPEC_RETRY": "5"}


def cloud_reason(stack: Stack, name: str, reason: str, timeout: float = 30) -> None:
    wait_for(
        lambda: (c := cloud_condition(stack.kube, name)) and c.get("reason") == reason,
        timeout=timeout,
        what=f"EcsCloud {name} reason {reason}",
    )


def test_a_404_that_names_no_server_never_releases_the_finalizer(stack: Stack) -> None:
    """A wrong endpoint answers 404 to everything; that is not "the server is gone". The deletion waits,
    saying why, and completes once the endpoint is right again: the NIC is detached, not leaked."""
    ns = stack.new_namespace("flt-404")
    name = f"gw-{uuid.uuid4().hex[:6]}"
    apply_cloud(
        stack.kube,
        name,
        stack.sim.url,
        secret={"token": TOKEN},
    )
    try:
        cloud_reason(stack, name, "Connected")
        server = stack.new_server()
        stack.create(ns, "nic", stack.spec(server, cloudRef={"name": name}))
        stack.wait_ready(ns, "nic")
        # The same cloud behind a path the simulator does not serve: every call answers a bare 404.
        stack.kube.kubectl("delete", "ecscloud", name, "--wait=true")
        apply_cloud(stack.kube, name, f"{stack.sim.url}/gateway", secret=None, secret_name=f"{name}-credentials")
        cloud_reason(stack, name, "Connected")
        stack.delete(ns, "nic")
        blocked = stack.wait_reason(ns, "nic", "DetachBlocked", timeout=30)
        assert "Orphan" in condition(blocked, "Ready")["message"]  # type: ignore[index]
        assert len(stack.sim.ports_of(server)) == 1
        assert stack.get(ns, "nic") is not None  # the finalizer holds

        stack.kube.kubectl("delete", "ecscloud", name, "--wait=true")
        apply_cloud(stack.kube, name, stack.sim.url, secret=None, secret_name=f"{name}-credentials")
        stack.wait_gone(ns, "nic", timeout=40)
        assert stack.sim.ports_of(server) == []
    finally:
        delete_cloud(stack.kube, name)


def test_rejected_credentials_say_so_on_the_attachment_until_the_secret_is_fixed(stack: Stack) -> None:
    ns = stack.new_namespace("flt-rejected")
    name = f"bad-{uuid.uuid4().hex[:6]}"
    apply_cloud(stack.kube, name, stack.sim.url, secret={"token": "not-the-token"})
    try:
        cloud_reason(stack, name, "Connected")  # the version probe needs no credentials
        server = stack.new_server()
        stack.create(ns, "nic", stack.spec(server, cloudRef={"name": name}))
        cloud_reason(stack, name, "CredentialsRejected")
        # An attachment that never made a call itself says what to fix too, not "the cloud is not Ready".
        stack.create(ns, "second", stack.spec(server, cloudRef={"name": name}))
        second = stack.wait_reason(ns, "second", {"CredentialsRejected", "CloudNotReady"}, type_="Synced")
        assert condition(second, "Synced")["reason"] == "CredentialsRejected"  # type: ignore[index]
        # After the cloud is marked rejected its attachments are looked at again: they keep saying what to fix.
        calls = stack.sim.calls_on(server)
        for _ in range(3):
            obj = stack.wait_reason(ns, "nic", "CredentialsRejected", type_="Synced")
            assert condition(obj, "Ready")["reason"] == "CredentialsRejected"  # type: ignore[index]
            message = condition(obj, "Synced")["message"]  # type: ignore[index]
            assert f"{SYSTEM_NS}/{name}-credentials" in message, message
        assert stack.sim.calls_on(server) <= calls + 1  # terminal: no retry storm while the Secret is wrong

        apply_cloud(stack.kube, name, stack.sim.url, secret={"token": TOKEN})
        stack.wait_ready(ns, "nic", timeout=40)
        stack.wait_ready(ns, "second", timeout=40)
    finally:
        delete_cloud(stack.kube, name)


def test_a_secret_that_is_not_text_is_a_condition_and_the_cloud_recovers_once_fixed(stack: Stack) -> None:
    name = f"bin-{uuid.uuid4().hex[:6]}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-credentials", "namespace": SYSTEM_NS},
        "data": {"token": base64.b64encode(b"\xff\xfe\x00binary").decode()},
    }
    stack.kube.kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    apply_cloud(stack.kube, name, stack.sim.url, secret=None, secret_name=f"{name}-credentials")
    try:
        cloud_reason(stack, name, "CredentialsInvalid")
        assert "'token'" in cloud_condition(stack.kube, name)["message"]  # type: ignore[index]
        apply_cloud(stack.kube, name, stack.sim.url, secret={"token": TOKEN})
        cloud_reason(stack, name, "Connected", timeout=40)
    finally:
        delete_cloud(stack.kube, name)


def test_ecscloud_events_show_in_kubectl_describe(stack: Stack) -> None:
    name = f"ev-{uuid.uuid4().hex[:6]}"
    apply_cloud(stack.kube, name, stack.sim.url, secret=None, secret_name="no-such-secret")
    try:
        cloud_reason(stack, name, "SecretNotFound")
        described = wait_for(
            lambda: (
                (out := stack.kube.kubectl("describe", "ecscloud", name).stdout) and "SecretNotFound" in out and out
            ),
            timeout=30,
            what="the Event in kubectl describe",
        )
        assert "Events:" in described and "<none>" not in described.split("Events:", 1)[1]
        events = stack.kube.core.list_event_for_all_namespaces(
            field_selector=f"involvedObject.kind=EcsCloud,involvedObject.name={name}"
        ).items
        assert events and all(not e.involved_object.namespace for e in events)
    finally:
        delete_cloud(stack.kube, name)


def test_a_refusal_that_no_longer_holds_is_tested_again_with_credentials(stack: Stack, tmp_path: Path) -> None:
    """The cloud refused the Secret's token, then accepts it (the token was activated late, the refusal was a
    glitch): the unauthenticated version probe cannot tell, so without a re-test the cloud stays wedged."""
    world = seed()
    world["credentials"]["token"] = "activated-later"
    server = str(uuid.uuid4())
    world["servers"] = [{"id": server, "maxNics": 4}]
    (tmp_path / "seed.json").write_text(json.dumps(world))
    with open(tmp_path / "sim.log", "w") as log:
        sim = SimulatorProcess(tmp_path / "seed.json", log=log)
        sim.start()
        name = f"late-{uuid.uuid4().hex[:6]}"
        ns = stack.new_namespace("flt-late")
        try:
            apply_cloud(stack.kube, name, sim.url, secret={"token": "refused-at-first"})
            cloud_reason(stack, name, "Connected")
            stack.create(ns, "nic", stack.spec(server, cloudRef={"name": name}))
            cloud_reason(stack, name, "CredentialsRejected")
            # The same Secret becomes good: the cloud now accepts the token it refused.
            sim.stop()
            world["credentials"]["token"] = "refused-at-first"
            (tmp_path / "seed.json").write_text(json.dumps(world))
            sim.start()
            stack.wait_ready(ns, "nic", timeout=60)
            assert len(sim.ports_of(server)) == 1
        finally:
            stack.kube.patch_attachment(ns, "nic", {"metadata": {"finalizers": None}})
            delete_cloud(stack.kube, name)
            sim.stop()
