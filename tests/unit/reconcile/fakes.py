"""A fake Kubernetes and a fake cloud, just faithful enough to drive the Controller's reconcile by hand.

FakeKube keeps object bodies with resourceVersions, guards writes like the API server does (a stale
resourceVersion is a Conflict; a status patch touches only status; removing the last finalizer of a deleted
object removes it) and hands every change to a watch callback, which a test may hold back (a lost event).
FakeCloud keeps which NIC is on which server, and which NICs it made: a test may drop its answers (the attach
happened, the reply was lost), detach NICs behind the operator's back, or delete a server.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import itertools
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.config import FINALIZER, INTENT_ANNOTATION
from ecs_nic_operator.kube import Conflict, Gone

Body = dict[str, Any]


class Crash(BaseException):
    """The operator process dies here (not an Exception: nothing in the reconciler may catch it)."""


@dataclass
class FakeKube:
    objects: dict[tuple[str, str], Body] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    writes: Counter[str] = field(default_factory=Counter)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    watch: Callable[[Body, bool], None] | None = None
    conflict_next: int = 0  # fail this many guarded metadata writes with Conflict (a racing user)
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what users do ------------------------------------------------------------------------------
    def create(
        self, namespace: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> Body:
        body: Body = {
            "apiVersion": "ecsnic.io/v1alpha1",
            "kind": "EcsNicAttachment",
            "metadata": {
                "namespace": namespace,
                "name": name,
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "annotations": dict(annotations or {}),
                "finalizers": [],
            },
            "spec": dict(spec),
            "status": {},
        }
        return self._commit(body)

    def delete(self, namespace: str, name: str) -> None:
        body = self.objects.get((namespace, name))
        if body is None:
            return
        if not body["metadata"]["finalizers"]:
            self._remove(body)
            return
        body = copy.deepcopy(body)
        body["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
        self._commit(body)

    def edit_spec(self, namespace: str, name: str, **spec: Any) -> None:
        body = copy.deepcopy(self.objects[(namespace, name)])
        body["spec"].update(spec)
        body["metadata"]["generation"] += 1
        self._commit(body)

    def _commit(self, body: Body) -> Body:
        body["metadata"]["resourceVersion"] = str(next(self._rv))
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        self.objects[key] = body
        if self.watch is not None:
            self.watch(copy.deepcopy(body), False)
        return copy.deepcopy(body)

    def _remove(self, body: Body) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        del self.objects[key]
        if self.watch is not None:
            self.watch(copy.deepcopy(body), True)

    def _get(self, namespace: str, name: str) -> Body:
        body = self.objects.get((namespace, name))
        if body is None:
            raise Gone("not found")
        return copy.deepcopy(body)

    # -- the Kube interface the controller uses --------------------------------------------------------
    async def record_intent(
        self, namespace: str, name: str, resource_version: str, finalizers: tuple[str, ...], intent: str
    ) -> Body:
        body = self._get(namespace, name)
        self.writes["attachment"] += 1
        if self.conflict_next > 0:
            self.conflict_next -= 1
            raise Conflict("racing user")
        if body["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("stale")
        if FINALIZER not in body["metadata"]["finalizers"]:
            body["metadata"]["finalizers"].append(FINALIZER)
        body["metadata"]["annotations"][INTENT_ANNOTATION] = intent
        return self._commit(body)

    async def add_finalizer(
        self, namespace: str, name: str, resource_version: str, finalizers: tuple[str, ...]
    ) -> Body:
        body = self._get(namespace, name)
        self.writes["attachment"] += 1
        if body["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("stale")
        body["metadata"]["finalizers"].append(FINALIZER)
        return self._commit(body)

    async def remove_finalizer(self, namespace: str, name: str, finalizers: tuple[str, ...]) -> None:
        body = self.objects.get((namespace, name))
        if body is None:
            return
        self.writes["attachment"] += 1
        body = copy.deepcopy(body)
        body["metadata"]["finalizers"] = [f for f in body["metadata"]["finalizers"] if f != FINALIZER]
        if body["metadata"].get("deletionTimestamp") and not body["metadata"]["finalizers"]:
            self.objects[(namespace, name)] = body
            self._remove(body)
        else:
            self._commit(body)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> Body:
        body = self._get(namespace, name)
        self.writes["attachment_status"] += 1
        merged = dict(body.get("status") or {})
        for k, v in status.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        body["status"] = merged
        return self._commit(body)

    async def list_attachments(self, namespaces: tuple[str, ...]) -> tuple[list[Body], str]:
        return [copy.deepcopy(b) for b in self.objects.values()], str(next(self._rv))  # the list's revision

    async def node_provider_id(self, name: str) -> str | None:
        if name not in self.nodes:
            raise Gone("no node")
        return self.nodes[name]

    async def namespace_labels(self, name: str) -> dict[str, str]:
        return {}

    def forget(self, kind: str, name: str) -> None:
        pass

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        if (namespace, name) not in self.secrets:
            raise Gone("no secret")
        return dict(self.secrets[(namespace, name)])

    async def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        if (namespace, name) in self.secrets:
            raise Conflict("exists")
        self.secrets[(namespace, name)] = dict(data)

    async def post_event(self, namespace: str, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    async def patch_cloud_status(self, name: str, status: dict[str, Any]) -> int:
        return 0


def key_secret() -> dict[str, str]:
    return {"key": base64.b64encode(b"k" * 32).decode()}


@dataclass
class FakeCloud:
    """Servers and their NICs. ``made`` is every NIC the cloud created for an attach, ``foreign`` the NICs
    someone else attached; ``detached`` every detach call, by port."""

    servers: dict[str, dict[str, InterfaceAttachment]] = field(default_factory=dict)
    free_ports: dict[str, str] = field(default_factory=dict)  # port -> network, attachable by portId
    made: set[str] = field(default_factory=set)
    foreign: set[str] = field(default_factory=set)
    detached: list[str] = field(default_factory=list)
    lose_next_reply: int = 0  # the next N attach calls take effect but answer CloudUnavailable
    crash_next_attach: bool = False  # the next attach takes effect, then the operator process dies
    current_uid: str = ""  # whose reconcile is calling (set by the harness): who each NIC was made for
    made_for: dict[str, str] = field(default_factory=dict)
    detached_for: list[tuple[str, str]] = field(default_factory=list)  # (port, uid of the caller)
    down: bool = False
    # NICs each server can hold, told by attachable_nics like Huawei's v1 API; None: no such API (upstream Nova)
    max_nics: int | None = None
    v1_list_refused: bool = False  # an IAM policy that allows the count's own call and not the v1 list
    new_port_state: str = "ACTIVE"  # what a NIC made by attach reports (DOWN: it never comes up by itself)
    detach_sticks: bool = False  # a DELETE is accepted and the NIC stays (a flavor that detaches only when stopped)
    calls: Counter[str] = field(default_factory=Counter)
    # uids whose attach the cloud refused with an answer that does not exclude an effect (a 503 while down) and
    # that made no NIC: the one case where adoption by baseline may take another's NIC (docs/ownership.md)
    refused_unsure_for: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _server(self, server_id: str, operation: str) -> dict[str, InterfaceAttachment]:
        if self.down:
            raise errors.CloudUnavailable(operation, "503")
        if server_id not in self.servers:
            raise errors.NotFound(operation, f"Instance {server_id} could not be found.", status=404, what="server")
        return self.servers[server_id]

    def new_port(self, net: str, ip: str | None = None) -> InterfaceAttachment:
        n = next(self._ids)
        return InterfaceAttachment(
            f"port-{n:04d}",
            net,
            f"fa:16:3e:00:00:{n % 256:02x}",
            "ACTIVE",
            (FixedIp("sub", ip or f"10.0.0.{n % 250 + 2}"),),
        )

    def attach_foreign(self, server_id: str, net: str) -> str:
        port = self.new_port(net)
        self.servers[server_id][port.port_id] = port
        self.foreign.add(port.port_id)
        return port.port_id

    async def attach(
        self, server_id: str, *, net_id: str | None = None, port_id: str | None = None, fixed_ip: str | None = None
    ) -> InterfaceAttachment:
        self.calls["attach"] += 1
        if self.down:
            self.refused_unsure_for.add(self.current_uid)
        nics = self._server(server_id, "attach")
        if port_id is not None:
            if any(port_id in s for s in self.servers.values()):
                raise errors.InUse("attach", f"Port {port_id} is still in use.", status=409)
            if port_id not in self.free_ports:
                raise errors.NotFound("attach", f"Port {port_id} could not be found.", status=404, what="port")
            port = InterfaceAttachment(port_id, self.free_ports.pop(port_id), "fa:16:3e:ff:ff:ff", "ACTIVE", ())
        else:
            assert net_id is not None
            for nic in nics.values():
                if fixed_ip and any(ip.ip_address == fixed_ip for ip in nic.fixed_ips):
                    raise errors.InUse("attach", f"Fixed IP address {fixed_ip} is already in use.", status=409)
            port = dataclasses.replace(self.new_port(net_id, fixed_ip), port_state=self.new_port_state)
        nics[port.port_id] = port
        self.made.add(port.port_id)
        self.made_for[port.port_id] = self.current_uid
        if self.crash_next_attach:
            self.crash_next_attach = False
            raise Crash("the operator died while the cloud answered")
        if self.lose_next_reply > 0:
            self.lose_next_reply -= 1
            raise errors.CloudUnavailable("attach", "timed out (ReadTimeout)")
        return port

    async def attachable_nics(self, server_id: str) -> int | None:
        self.calls["attachable_nics"] += 1
        nics = self._server(server_id, "attachable_nics")
        return None if self.max_nics is None else max(0, self.max_nics - len(nics))

    async def list(self, server_id: str) -> list[InterfaceAttachment]:
        self.calls["list"] += 1
        return list(self._server(server_id, "list").values())

    async def list_with_room(self, server_id: str) -> tuple[list[InterfaceAttachment], int | None] | None:
        self.calls["list_with_room"] += 1
        if self.v1_list_refused:
            raise errors.AuthError("list_with_room", "Policy doesn't allow ecs:cloudServers:listServerInterfaces")
        nics = self._server(server_id, "list_with_room")
        return None if self.max_nics is None else (list(nics.values()), max(0, self.max_nics - len(nics)))

    async def detach(self, server_id: str, port_id: str) -> None:
        self.calls["detach"] += 1
        nics = self._server(server_id, "detach")
        if port_id not in nics:
            raise errors.NotFound("detach", f"Port {port_id} is not attached", status=404, what="interface")
        if self.detach_sticks:
            return
        self.detached.append(port_id)
        self.detached_for.append((port_id, self.current_uid))
        del nics[port_id]

    async def server_gone(self, server_id: str) -> bool:
        self.calls["show_server"] += 1
        if self.down:
            raise errors.CloudUnavailable("show_server", "503")
        return server_id not in self.servers

    async def aclose(self) -> None:
        pass
