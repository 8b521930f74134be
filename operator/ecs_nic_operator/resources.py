"""Typed, read-only views of EcsNicAttachment and EcsCloud bodies (camelCase on the Kubernetes side)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from ecs_nic_operator import GROUP, VERSION
from ecs_nic_operator.cloud.models import AddressPair, InterfaceAttachment, Port
from ecs_nic_operator.cloud.network import ANY_SOURCE
from ecs_nic_operator.config import DEFAULT_CLOUD, FINALIZER, INTENT_ANNOTATION, PAUSED_ANNOTATION

Key = tuple[str, str]  # (namespace, name)


def _intern(value: Any) -> str | None:
    """Server, network and cloud IDs repeat across many attachments: keep one copy of each."""
    return sys.intern(str(value)) if value else None


@dataclass(frozen=True, slots=True)
class Intent:
    """Recorded (signed, see reconcile/evidence.py) before an attach call: when it started, on which server,
    which ports the server already had, and which lost port a drift repair replaces.

    ``sig`` is the operator's HMAC over these fields and the object's uid, cloud and spec; an empty ``sig``
    marks an annotation that could not be read at all. Only a verified intent is evidence of anything.
    """

    started_at: str
    known_ports: tuple[str, ...] | None  # None: not needed (fixed IP or port ID identify the NIC)
    server: str = ""
    replaces: str | None = None  # a drift repair: the port it replaces (still in status until the answer)
    sig: str = ""
    # Counts the object's intents (signed): status.intentSeq, which only the operator writes, holds the latest
    # one acted on, so an older intent of the same object copied back (a smaller baseline) verifies no more.
    seq: int = 0

    def dump(self) -> str:
        return json.dumps(
            {
                "startedAt": self.started_at,
                "server": self.server,
                "knownPorts": self.known_ports,
                "replaces": self.replaces,
                "sig": self.sig,
                **({"seq": self.seq} if self.seq else {}),
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, raw: str | None) -> Intent | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            known = data.get("knownPorts")
            replaces = data.get("replaces")
            return cls(
                str(data["startedAt"]),
                tuple(str(p) for p in known) if known is not None else None,
                str(data.get("server") or ""),
                str(replaces) if replaces else None,
                str(data.get("sig") or ""),
                _seq(data.get("seq")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            # Unreadable: evidence of nothing. It never widens adoption; the reconciler blocks on it.
            return GARBLED


GARBLED = Intent("", None)


def _seq(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a sequence number: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    cloud: str
    server_id: str | None
    node_name: str | None
    net_id: str | None
    port_id: str | None
    fixed_ip: str | None
    deletion_policy: str
    # Port properties (mutable; None: not managed, left as the cloud has them) and IPv6 (api v1 only).
    security_groups: tuple[str, ...] | None = None
    source_dest_check: bool | None = None
    address_pairs: tuple[AddressPair, ...] | None = None
    ipv6: bool = False
    ipv6_bandwidth: str | None = None

    @property
    def port_properties(self) -> PortProperties:
        return PortProperties(self.security_groups, self.source_dest_check, self.address_pairs)

    @classmethod
    def from_body(cls, spec: dict[str, Any]) -> AttachmentSpec:
        fixed = spec.get("fixedIps") or []
        groups = spec.get("securityGroupIds")
        pairs = spec.get("allowedAddressPairs")
        check = spec.get("sourceDestCheck")
        ipv6 = spec.get("ipv6") or {}
        return cls(
            cloud=sys.intern((spec.get("cloudRef") or {}).get("name") or DEFAULT_CLOUD),
            server_id=_intern(spec.get("serverId")),
            node_name=_intern(spec.get("nodeName")),
            net_id=_intern(spec.get("netId")),
            port_id=spec.get("portId"),
            fixed_ip=fixed[0].get("ipAddress") if fixed else None,
            deletion_policy=spec.get("deletionPolicy") or "Delete",
            security_groups=tuple(str(g).lower() for g in groups) if isinstance(groups, list) else None,
            source_dest_check=check if isinstance(check, bool) else None,
            address_pairs=(
                tuple(
                    AddressPair(str(p.get("ipAddress") or ""), str(p.get("macAddress") or "").lower())
                    for p in pairs
                    if isinstance(p, dict)
                )
                if isinstance(pairs, list)
                else None
            ),
            ipv6=bool(ipv6.get("enabled")) if isinstance(ipv6, dict) else False,
            ipv6_bandwidth=(ipv6.get("bandwidthId") or None) if isinstance(ipv6, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class PortProperties:
    """What an attachment's spec says about its port's properties; None in a field: not managed."""

    security_groups: tuple[str, ...] | None = None
    source_dest_check: bool | None = None
    address_pairs: tuple[AddressPair, ...] | None = None

    @property
    def managed(self) -> bool:
        return self.security_groups is not None or self.source_dest_check is not None or self.address_pairs is not None


def port_properties_status(port: Port) -> dict[str, Any]:
    """The port's properties as last read, in status' field names; Huawei's "allow any source" pair is shown
    as ``sourceDestCheck: false``, not as a pair."""
    pairs = [p for p in port.allowed_address_pairs if p.ip_address != ANY_SOURCE]
    return {
        "securityGroupIds": list(port.security_groups),
        "sourceDestCheck": len(pairs) == len(port.allowed_address_pairs),
        "allowedAddressPairs": [
            {"ipAddress": p.ip_address, **({"macAddress": p.mac_address} if p.mac_address else {})} for p in pairs
        ],
    }


@dataclass(frozen=True, slots=True)
class Attachment:
    """The operator's compact copy of one EcsNicAttachment, kept for every object.

    At 10,000 objects the copies are most of the operator's memory, so the status is held as one compact
    JSON string (about a third of the size of the parsed dicts) and parsed only when a reconcile needs it;
    the few fields that scans over all objects read (port, server, state, condition summary) are kept apart.
    """

    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    spec: AttachmentSpec
    status_json: str
    port_id: str | None
    status_server: str | None
    port_state: str | None
    conditions_summary: tuple[tuple[str, str, str], ...]  # (type, status, reason)
    finalizers: tuple[str, ...]
    deleting: bool
    paused: bool
    intent: Intent | None
    intent_seq: int  # status.intentSeq: the sequence of the latest intent the operator acted on (0: none)
    job_id: str | None = None  # status.jobId: a v1 attach job in flight (reconcile/jobs.py)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def has_finalizer(self) -> bool:
        return FINALIZER in self.finalizers

    @property
    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.status_json)
        return result

    def ref(self) -> dict[str, Any]:
        """Just enough of a body for kopf to post an Event about this object."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "EcsNicAttachment",
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Attachment:
        meta = body.get("metadata", {})
        annotations = meta.get("annotations") or {}
        status = body.get("status") or {}
        return cls(
            namespace=sys.intern(meta.get("namespace", "")),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            generation=int(meta.get("generation") or 0),
            spec=AttachmentSpec.from_body(body.get("spec") or {}),
            status_json=json.dumps(status, separators=(",", ":")),
            port_id=str(status["portId"]) if status.get("portId") else None,
            status_server=_intern(status.get("serverId")),
            port_state=sys.intern(str(status["portState"])) if status.get("portState") else None,
            conditions_summary=tuple(
                (
                    sys.intern(str(c.get("type"))),
                    sys.intern(str(c.get("status"))),
                    sys.intern(str(c.get("reason") or "")),
                )
                for c in status.get("conditions") or []
            ),
            finalizers=tuple(sys.intern(f) for f in meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
            paused=str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true",
            intent=_live_intent(annotations.get(INTENT_ANNOTATION), status.get("portId")),
            intent_seq=_status_seq(status.get("intentSeq")),
            job_id=str(status["jobId"]) if status.get("jobId") else None,
        )


def _status_seq(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _live_intent(raw: str | None, port_id: Any) -> Intent | None:
    """The intent matters only until its answer is saved; dropping it then saves ~1 KB an object. A repair
    intent stays while status still names the port it replaces (the repair's answer is not saved yet)."""
    if not raw:
        return None
    intent = Intent.load(raw)
    if port_id and (intent is None or intent.replaces != str(port_id)):
        return None
    return intent


def status_from_port(server_id: str, port: InterfaceAttachment) -> dict[str, Any]:
    """The cloud's view of a port, in the status field names of API.md (one to one with the cloud's)."""
    return {
        "serverId": server_id,
        "portId": port.port_id,
        "netId": port.net_id,
        "portState": port.port_state,
        "macAddr": port.mac_addr,
        "fixedIps": [{"subnetId": ip.subnet_id, "ipAddress": ip.ip_address} for ip in port.fixed_ips],
        # Only clouds that report them (Huawei's v1 list): elsewhere the keys stay out of status.
        **({"pciAddress": port.pci_address} if port.pci_address else {}),
        **({"driverMode": port.driver_mode} if port.driver_mode else {}),
    }


@dataclass(frozen=True, slots=True)
class CloudSpec:
    name: str
    generation: int
    endpoint: str
    project_id: str
    region: str | None
    credentials_type: str
    secret_namespace: str
    secret_name: str
    qps: float
    burst: int
    namespace_selector: dict[str, Any] | None
    ca_bundle: str | None = None  # base64 PEM, trusted besides the system CAs
    api: str = "v2.1"  # v2.1 (os-interface) | v1 (Huawei's batch NIC API and jobs)
    network_endpoint: str | None = None  # Neutron-compatible /v2.0/ports, for the port properties

    @classmethod
    def from_body(cls, body: dict[str, Any], default_qps: float, default_burst: int) -> CloudSpec:
        meta = body.get("metadata", {})
        spec = body.get("spec") or {}
        creds = spec.get("credentials") or {}
        ref = creds.get("secretRef") or {}
        limit = spec.get("rateLimit") or {}
        return cls(
            name=meta.get("name", ""),
            generation=int(meta.get("generation") or 0),
            endpoint=str(spec.get("endpoint", "")).rstrip("/"),
            project_id=str(spec.get("projectId", "")),
            region=spec.get("region"),
            credentials_type=str(creds.get("type", "")),
            secret_namespace=str(ref.get("namespace", "")),
            secret_name=str(ref.get("name", "")),
            qps=float(limit.get("qps") or default_qps),
            burst=int(limit.get("burst") or default_burst),
            namespace_selector=spec.get("namespaceSelector") or None,
            ca_bundle=spec.get("caBundle") or None,
            api="v1" if spec.get("api") == "v1" else "v2.1",
            network_endpoint=str(spec["networkEndpoint"]).rstrip("/") if spec.get("networkEndpoint") else None,
        )
