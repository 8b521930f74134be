"""Value objects for what the ``os-interface`` API, Huawei's v1 jobs and Neutron's ports return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _text(d: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise ValueError(f"no {key!r}")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is {type(value).__name__}, not a string")
    # Huawei's published example responses carry stray whitespace in IDs (" 0c...");
    # the reconciler compares IDs for equality, so normalise once here.
    return value.strip()


@dataclass(frozen=True, slots=True)
class FixedIp:
    subnet_id: str
    ip_address: str

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> FixedIp:
        if not isinstance(d, Mapping):
            raise ValueError("fixed_ips entry is not an object")
        return cls(subnet_id=_text(d, "subnet_id"), ip_address=_text(d, "ip_address"))


@dataclass(frozen=True, slots=True)
class InterfaceAttachment:
    port_id: str
    net_id: str
    mac_addr: str
    port_state: str
    fixed_ips: tuple[FixedIp, ...]
    # Huawei's v1 list only: where the guest finds the NIC ("0000:00:06.0") and its driver ("virtio").
    pci_address: str = ""
    driver_mode: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> InterfaceAttachment:
        """Build from one ``interfaceAttachment`` object; raises ValueError if it is unusable."""
        if not isinstance(d, Mapping):
            raise ValueError("interfaceAttachment is not an object")
        raw_ips = d.get("fixed_ips") or []
        if not isinstance(raw_ips, list):
            raise ValueError("interfaceAttachment 'fixed_ips' is not a list")
        port_id = _text(d, "port_id", required=True)
        if not port_id:
            raise ValueError("interfaceAttachment has an empty 'port_id'")
        return cls(
            port_id=port_id,
            net_id=_text(d, "net_id"),
            # MACs are compared and shown in status; the API is not consistent about case.
            mac_addr=_text(d, "mac_addr").lower(),
            port_state=_text(d, "port_state"),
            fixed_ips=tuple(FixedIp.from_api(ip) for ip in raw_ips),
            pci_address=_text(d, "pci_address"),
            driver_mode=_text(d, "driver_mode"),
        )


JOB_DONE = frozenset({"SUCCESS", "FAIL"})


@dataclass(frozen=True, slots=True)
class Job:
    """A v1 job (``GET /v1/{project_id}/jobs/{job_id}``): INIT, RUNNING, SUCCESS or FAIL; for NIC jobs the NICs
    are at ``entities.sub_jobs[].entities.nic_id`` (some clouds put a single one at ``entities.nic_id``)."""

    job_id: str
    status: str
    job_type: str
    nic_ids: tuple[str, ...]
    error_code: str
    fail_reason: str

    @property
    def done(self) -> bool:
        return self.status in JOB_DONE

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Job:
        if not isinstance(d, Mapping):
            raise ValueError("job is not an object")
        status = _text(d, "status", required=True).upper()
        entities = d.get("entities") or {}
        if not isinstance(entities, Mapping):
            raise ValueError("job 'entities' is not an object")
        subs = entities.get("sub_jobs") or []
        if not isinstance(subs, list):
            raise ValueError("job 'entities.sub_jobs' is not a list")
        nics: list[str] = []
        code, reason = _text(d, "error_code"), _text(d, "fail_reason")
        for sub in subs:
            if not isinstance(sub, Mapping):
                raise ValueError("a sub-job is not an object")
            sub_entities = sub.get("entities") or {}
            if not isinstance(sub_entities, Mapping):
                raise ValueError("a sub-job's 'entities' is not an object")
            nic = _text(sub_entities, "nic_id")
            if nic:
                nics.append(nic)
            # A failed batch names its cause per sub-job; the first one stands for the job if it names none.
            code = code or _text(sub, "error_code")
            reason = reason or _text(sub, "fail_reason") or _text(sub_entities, "errorcode_message")
        top = _text(entities, "nic_id")
        if top and top not in nics:
            nics.insert(0, top)
        return cls(
            job_id=_text(d, "job_id"),
            status=status,
            job_type=_text(d, "job_type"),
            nic_ids=tuple(nics),
            error_code=code,
            fail_reason=reason,
        )


@dataclass(frozen=True, slots=True)
class AddressPair:
    ip_address: str
    mac_address: str = ""  # empty: the port's own MAC

    def to_api(self) -> dict[str, str]:
        return {"ip_address": self.ip_address, **({"mac_address": self.mac_address} if self.mac_address else {})}


@dataclass(frozen=True, slots=True)
class Port:
    """A Neutron port (``GET``/``PUT /v2.0/ports/{id}``): the properties the network side keeps for a NIC."""

    port_id: str
    network_id: str
    device_id: str
    security_groups: tuple[str, ...]
    allowed_address_pairs: tuple[AddressPair, ...]
    port_security_enabled: bool

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Port:
        if not isinstance(d, Mapping):
            raise ValueError("port is not an object")
        groups = d.get("security_groups") or []
        pairs = d.get("allowed_address_pairs") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("port 'security_groups' is not a list of IDs")
        if not isinstance(pairs, list) or not all(isinstance(p, Mapping) for p in pairs):
            raise ValueError("port 'allowed_address_pairs' is not a list of objects")
        security = d.get("port_security_enabled", True)
        return cls(
            port_id=_text(d, "id", required=True),
            network_id=_text(d, "network_id"),
            device_id=_text(d, "device_id"),
            security_groups=tuple(g.strip() for g in groups),
            allowed_address_pairs=tuple(
                AddressPair(_text(p, "ip_address"), _text(p, "mac_address").lower()) for p in pairs
            ),
            port_security_enabled=True if security is None else bool(security),
        )
