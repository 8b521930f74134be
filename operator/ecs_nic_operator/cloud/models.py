"""Value objects for what the ``os-interface`` API returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _text(d: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None:
        if required:
            raise ValueError(f"interfaceAttachment has no {key!r}")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"interfaceAttachment {key!r} is {type(value).__name__}, not a string")
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
        )
