"""Fixtures for the fault suite: each module runs its own simulator, EcsCloud and operator.

The shared session operator (EcsCloud "default") watches every namespace, so two operators would both act
on the same attachments; the fault suite therefore stops it once for the whole package and brings it back
afterwards (the way test_crash.py's ``own_operator`` does for one test). Every module then gets a fresh
simulator (its own call counters and peak rate), an EcsCloud of its own name pointing at it, and an
operator started with the module's ``OPERATOR_ENV`` / ``OPERATOR_ARGS``.

Counts: CI runs reduced counts; ``ECSNIC_FAULTS_FULL=1`` runs the full ones (see ``FULL`` users).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A, NET_B, SIM_PROJECT, SUBNET_A, SUBNET_B
from tests.integration.kube import Kube, condition, wait_for

FULL = os.environ.get("ECSNIC_FAULTS_FULL") == "1"
SYSTEM_NS = "ecs-nic-system"

# Credentials of the fault simulators: every value here must never show up in a log, Event or status.
TOKEN = "flt-token-8c41d2e07f5a"
ACCESS_KEY = "FLTAK7Q2M9X4C1V8B3N6"
SECRET_KEY = "flt-sk-3e9a61f0c2b84d57a6"
USERNAME = "flt-user"
PASSWORD = "flt-password-77d2a9c4e1"
DOMAIN = "flt-domain"
SECRET_VALUES = (TOKEN, ACCESS_KEY, SECRET_KEY, PASSWORD)

# Servers in the seed survive a simulator restart (the world resets to the seed).
SEEDED_SERVERS = [f"5eeded00-0000-4000-8000-{i:012d}" for i in range(1, 25)]

# Every operator log of the package, for the secrets test to grep at the end.
OPERATOR_LOGS: list[Path] = []


def seed() -> dict[str, Any]:
    return {
        "projectId": SIM_PROJECT,
        "credentials": {
            "token": TOKEN,
            "accessKey": ACCESS_KEY,
            "secretKey": SECRET_KEY,
            "username": USERNAME,
            "password": PASSWORD,
            "domainName": DOMAIN,
        },
        "servers": [{"id": s, "maxNics": 12} for s in SEEDED_SERVERS],
        "networks": [
            {"id": NET_A, "subnetId": SUBNET_A, "cidr": "10.30.0.0/16"},
            {"id": NET_B, "subnetId": SUBNET_B, "cidr": "10.40.0.0/24"},
        ],
        "ports": [],
        # Upstream Nova's answers unless a module sets SIM_BEHAVIOUR = {"dialect": "huawei", ...}.
        "behaviour": {"dialect": "nova", "latency": 0.01, "activeAfter": 0.6, "detachAfter": 0.3},
    }


def credentials_data(kind: str, url: str) -> dict[str, str]:
    if kind == "Token":
        return {"token": TOKEN}
    if kind == "AKSK":
        return {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    return {"authUrl": f"{url}/v3", "username": USERNAME, "password": PASSWORD, "domainName": DOMAIN}


def apply_cloud(
    kube: Kube,
    name: str,
    endpoint: str,
    *,
    kind: str = "Token",
    secret: dict[str, str] | None = None,
    secret_name: str | None = None,
    **spec: Any,
) -> None:
    """An EcsCloud and (unless secret is None and secret_name is given) its credentials Secret."""
    secret_name = secret_name or f"{name}-credentials"
    manifest: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NS}}]
    if secret is not None:
        manifest.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": SYSTEM_NS},
                "stringData": secret,
            }
        )
    manifest.append(
        {
            "apiVersion": "ecsnic.io/v1alpha1",
            "kind": "EcsCloud",
            "metadata": {"name": name},
            "spec": {
                "endpoint": endpoint,
                "projectId": SIM_PROJECT,
                "credentials": {"type": kind, "secretRef": {"namespace": SYSTEM_NS, "name": secret_name}},
                "rateLimit": {"qps": 50, "burst": 10},
                **spec,
            },
        }
    )
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifest))


def delete_cloud(kube: Kube, name: str) -> None:
    kube.kubectl("delete", "ecscloud", name, "--ignore-not-found", "--wait=false")
    kube.kubectl("delete", "secret", "-n", SYSTEM_NS, f"{name}-credentials", "--ignore-not-found")


def cloud_condition(kube: Kube, name: str) -> dict[str, Any] | None:
    try:
        cloud = kube.custom.get_cluster_custom_object("ecsnic.io", "v1alpha1", "ecsclouds", name)
    except client.ApiException:
        return None
    return condition(cloud, "Ready")


@dataclass
class Stack:
    kube: Kube
    sim: SimulatorProcess
    op: OperatorProcess
    cloud: str
    folder: Path
    namespaces: list[str] = field(default_factory=list)

    # -- setup helpers ----------------------------------------------------------------------------
    def new_namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        self.namespaces.append(name)
        return name

    def new_server(self, max_nics: int = 12) -> str:
        server_id = str(uuid.uuid4())
        self.sim.add_server(server_id, max_nics=max_nics)
        return server_id

    def spec(self, server: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"cloudRef": {"name": self.cloud}, "serverId": server}
        if "portId" not in extra:
            body["netId"] = NET_A
        body.update(extra)
        return body

    def create(self, namespace: str, name: str, spec: dict[str, Any], **meta: Any) -> None:
        self.kube.create_attachment(namespace, name, spec, **meta)

    # -- observing ---------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get_attachment(namespace, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def wait_reason(
        self, namespace: str, name: str, reason: str | set[str], type_: str = "Ready", timeout: float = 30
    ) -> dict[str, Any]:
        reasons = {reason} if isinstance(reason, str) else reason

        def probe() -> dict[str, Any] | None:
            obj = self.get(namespace, name)
            cond = condition(obj, type_) if obj else None
            return obj if cond and cond.get("reason") in reasons else None

        def last() -> str:
            obj = self.get(namespace, name) or {}
            return json.dumps(obj.get("status", {}).get("conditions"))

        try:
            return wait_for(probe, timeout=timeout, interval=0.2, what=f"{namespace}/{name} {type_} reason {reason}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; conditions now: {last()}") from None

    def is_ready(self, namespace: str, name: str) -> bool:
        obj = self.get(namespace, name)
        cond = condition(obj, "Ready") if obj else None
        return bool(cond and cond["status"] == "True")

    def wait_ready(self, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_reason(namespace, name, "Active", timeout=timeout)

    def wait_gone(self, namespace: str, name: str, timeout: float = 30) -> None:
        wait_for(lambda: self.get(namespace, name) is None, timeout=timeout, interval=0.2, what=f"{name} deleted")

    def api_calls(self) -> int:
        """Calls to the cloud API (os-interface and Keystone), not the unauthenticated version documents."""
        return sum(n for k, n in self.sim.state()["calls"].items() if "os-interface" in k or "auth/tokens" in k)

    def events(self, namespace: str, name: str | None = None) -> list[tuple[str, str, str]]:
        selector = f"involvedObject.name={name}" if name else None
        items = self.kube.core.list_namespaced_event(namespace, field_selector=selector).items
        return [(e.type, e.reason, e.message) for e in items]

    def delete(self, namespace: str, name: str) -> None:
        with contextlib.suppress(client.ApiException):
            self.kube.delete_attachment(namespace, name)

    def converge(
        self,
        namespace: str,
        live: set[str],
        deleted: set[str],
        servers: set[str],
        timeout: float,
    ) -> dict[str, dict[str, Any]]:
        """Wait until every live resource is Ready and every deleted one is gone, then compare with the cloud:
        each live resource owns exactly one NIC on its server, and no NIC on these servers is unowned."""

        def settled() -> dict[str, dict[str, Any]] | None:
            items = {o["metadata"]["name"]: o for o in self.kube.list_attachments(namespace)}
            if set(items) & deleted:
                return None
            for name in live:
                obj = items.get(name)
                cond = condition(obj, "Ready") if obj else None
                if not cond or cond["status"] != "True":
                    return None
            return items

        def summary() -> str:
            items = {o["metadata"]["name"]: o for o in self.kube.list_attachments(namespace)}
            stuck = {
                n: [(c["type"], c["status"], c["reason"]) for c in o.get("status", {}).get("conditions", [])]
                for n, o in items.items()
                if n in deleted or not ((c := condition(o, "Ready")) and c["status"] == "True")
            }
            return json.dumps(dict(list(stuck.items())[:8]))

        try:
            items = wait_for(settled, timeout=timeout, interval=0.5, what="every live resource Ready, deleted gone")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; not settled: {summary()}") from None

        def matches() -> bool:
            # Statuses are read afresh each time: a resource can look Ready while the operator has yet to
            # notice its NIC is gone (a cloud that lost state), and then repair it after the first look.
            nonlocal items
            fresh = settled()
            if fresh is None:
                return False
            items = fresh
            nics = {s: self.sim.ports_of(s) for s in servers}
            owned = {(o["status"]["serverId"], o["status"]["portId"]) for o in items.values()}
            on_cloud = {(s, n["port_id"]) for s, ports in nics.items() for n in ports}
            return owned == on_cloud

        # A deleted resource waits for its NIC to disappear, so this holds soon; the wait covers a NIC the
        # cloud still lists while its asynchronous detach finishes, and a drift repair still under way.
        with contextlib.suppress(AssertionError):
            wait_for(matches, timeout=20, interval=0.3, what="cloud matches statuses")
        nics = {s: self.sim.ports_of(s) for s in servers}
        by_resource: dict[str, list[dict[str, Any]]] = {}
        owners = {(o["status"]["serverId"], o["status"]["portId"]): n for n, o in items.items()}
        unowned = []
        for s, ports in nics.items():
            for nic in ports:
                owner = owners.get((s, nic["port_id"]))
                if owner is None:
                    unowned.append((s, nic["port_id"], nic["net_id"]))
                else:
                    by_resource.setdefault(owner, []).append(nic)
        if unowned:
            leaked = {port for _, port, _ in unowned}
            said = [e for e in self.events(namespace) if any(p in e[2] for p in leaked)]
            raise AssertionError(f"NICs on the cloud that no resource owns: {unowned}; Events naming them: {said}")
        assert set(items) == live, f"unexpected resources: {set(items) ^ live}"
        for name, obj in items.items():
            owned = by_resource.get(name, [])
            assert len(owned) == 1, f"{name}: {len(owned)} NICs on the cloud"
            assert owned[0]["port_state"] == "ACTIVE" == obj["status"]["portState"]
            assert obj["status"]["macAddr"] == owned[0]["mac_addr"]
        return items


@pytest.fixture(scope="package")
def shared_operator_stopped(operator: OperatorProcess) -> Iterator[None]:
    """The session operator watches every namespace: stop it while this package runs its own."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def _module_name(request: pytest.FixtureRequest) -> str:
    return request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")


@pytest.fixture(scope="module")
def stack(
    kube: Kube,
    shared_operator_stopped: None,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    name = f"flt-{_module_name(request)}"
    folder = tmp_path_factory.mktemp(name)
    world = seed()
    world["behaviour"].update(getattr(request.module, "SIM_BEHAVIOUR", {}))
    (folder / "seed.json").write_text(json.dumps(world))
    env: dict[str, str] = {
        "ECSNIC_CLOUD_TIMEOUT": "3",
        "ECSNIC_BACKOFF_MIN": "0.5",
        "ECSNIC_BACKOFF_MAX": "4",
        "ECSNIC_DEPENDENCY_RETRY": "5",
        **getattr(request.module, "OPERATOR_ENV", {}),
    }
    args: list[str] = list(getattr(request.module, "OPERATOR_ARGS", ["--resync-period", "4"]))
    cloud_spec: dict[str, Any] = dict(getattr(request.module, "CLOUD_SPEC", {}))
    kind: str = getattr(request.module, "CLOUD_CREDENTIALS", "Token")
    with open(folder / "simulator.log", "w") as sim_log:
        sim = SimulatorProcess(folder / "seed.json", log=sim_log)
        sim.start()
        op = OperatorProcess(kube.control_plane.kubeconfig, folder / "operator.log", args=args, env=env)
        OPERATOR_LOGS.append(op.log_path)
        stack = Stack(kube, sim, op, name, folder)
        try:
            apply_cloud(kube, name, sim.url, kind=kind, secret=credentials_data(kind, sim.url), **cloud_spec)
            op.start()
            wait_for(
                lambda: (c := cloud_condition(kube, name)) and c["status"] == "True",
                timeout=30,
                what=f"EcsCloud {name} Ready",
            )
            yield stack
        finally:
            op.stop()
            # Leave nothing for the next operator to act on: drop our finalizers, then the cloud.
            for ns in stack.namespaces:
                _release(kube, ns)
            delete_cloud(kube, name)
            sim.stop()


def _release(kube: Kube, namespace: str) -> None:
    with contextlib.suppress(client.ApiException):
        for obj in kube.list_attachments(namespace):
            name = obj["metadata"]["name"]
            with contextlib.suppress(client.ApiException):
                kube.patch_attachment(namespace, name, {"metadata": {"finalizers": None}})
                kube.delete_attachment(namespace, name)
        kube.core.delete_namespace(namespace)


def shuffled(items: list[str], rng: random.Random) -> list[str]:
    out = list(items)
    rng.shuffle(out)
    return out
