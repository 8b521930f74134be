"""A Controller wired to FakeKube and FakeCloud, reconciling keys when the test says so (no timers)."""

from __future__ import annotations

import copy
from typing import Any

from ecs_nic_operator.clouds import Cloud
from ecs_nic_operator.config import Settings
from ecs_nic_operator.controller import Controller
from ecs_nic_operator.reconcile.evidence import KEY_SECRET
from ecs_nic_operator.resources import CloudSpec, Key
from tests.unit.reconcile.fakes import Body, FakeCloud, FakeKube, key_secret

NET = "net-a"
SERVER = "srv-1"
SETTINGS = Settings(resync_period=300.0, spec_retry=300.0, dependency_retry=60.0, operator_namespace="ops")


class Harness:
    def __init__(self, kube: FakeKube | None = None, cloud: FakeCloud | None = None) -> None:
        self.kube = kube or FakeKube()
        self.kube.secrets.setdefault(("ops", KEY_SECRET), key_secret())
        self.cloud = cloud or FakeCloud()
        self.held: list[tuple[Body, bool]] = []  # watch events not delivered yet
        self.hold_events = False
        self.kube.watch = self._event
        self.controller = self.new_controller()
        self.posted: list[tuple[str, str]] = []

    def new_controller(self) -> Controller:
        """A fresh process: nothing in memory; every object arrives again through the watch (a re-list)."""
        controller = Controller(self.kube, SETTINGS)  # type: ignore[arg-type]
        spec = CloudSpec("default", 1, "https://ecs.example.com", "p", None, "Token", "ops", "creds", 10.0, 20, None)
        cloud = Cloud(spec=spec, body_ref={}, status={}, client=self.cloud, ready=True, reason="Connected")  # type: ignore[arg-type]
        controller.clouds._clouds["default"] = cloud
        controller.world.started_at -= 3600  # past the startup grace
        self.controller = controller
        for body in list(self.kube.objects.values()):
            controller.observe(copy.deepcopy(body))
        return controller

    def _event(self, body: Body, deleted: bool) -> None:
        if self.hold_events:
            self.held.append((body, deleted))
        else:
            self.controller.observe(body, deleted=deleted)

    def deliver(self) -> None:
        held, self.held = self.held, []
        for body, deleted in held:
            self.controller.observe(body, deleted=deleted)

    async def reconcile(self, namespace: str, name: str = "a") -> None:
        await self.controller.reconcile((namespace, name))

    async def settle(self, rounds: int = 30) -> None:
        """Reconcile every known key, again and again, until nothing changes in Kubernetes or the cloud."""
        for _ in range(rounds):
            before = (copy.deepcopy(self.kube.objects), copy.deepcopy(self.cloud.servers))
            for key in list(self.controller.objects):
                await self.controller.reconcile(key)
            if (self.kube.objects, self.cloud.servers) == before:
                return

    def obj(self, namespace: str, name: str = "a") -> Body | None:
        return self.kube.objects.get((namespace, name))

    def condition(self, namespace: str, name: str, type_: str = "Synced") -> dict[str, Any]:
        body = self.obj(namespace, name) or {}
        for cond in (body.get("status") or {}).get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return {}

    def keys(self) -> list[Key]:
        return list(self.controller.objects)


async def claimed(h: Harness) -> None:
    """A scenario: the port that ns/a asks for is already held by an attachment in another namespace."""
    h.cloud.free_ports["p-shared"] = NET
    h.kube.create("team-a", "owner", {"serverId": SERVER, "portId": "p-shared"})
    await h.settle()
    h.kube.create("ns", "a", {"serverId": SERVER, "portId": "p-shared"})
