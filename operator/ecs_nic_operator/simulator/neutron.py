"""Neutron's port resource (``GET``/``PUT /v2.0/ports/{port_id}``), as OpenStack Neutron and Huawei's VPC
endpoint serve it: the port properties a NIC carries (security groups, allowed address pairs, port security).

Refusals are Neutron's: ``{"NeutronError": {"type", "message", "detail"}}`` with 400 (bad input), 404
(``PortNotFound``, ``SecurityGroupNotFound``) and 409 (port security off while security groups or address
pairs remain: ``PortSecurityPortHasSecurityGroup``, ``AddressPairAndPortSecurityRequired``). Huawei's VPC
answers its Neutron-compatible API in the same shape.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from .world import Port, World

UPDATABLE = frozenset(
    {"name", "description", "admin_state_up", "security_groups", "allowed_address_pairs", "port_security_enabled"}
)
MAX_PAIRS = 10  # Huawei's VPC allows at most 10 allowed address pairs per port


class NeutronError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"NeutronError": {"type": self.type, "message": self.message, "detail": ""}}


def _bad(message: str) -> NeutronError:
    return NeutronError(400, "HTTPBadRequest", message)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def port_of(world: World, port_id: str) -> Port:
    world.settle()
    port = world.ports.get(port_id)
    if port is None:
        raise NeutronError(404, "PortNotFound", f"Port {port_id} could not be found.")
    return port


def view(world: World, port: Port, project_id: str, wall: float) -> dict[str, Any]:
    fixed = [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]} for ip in world.view(port)["fixed_ips"]]
    attached = port.server_id is not None
    return {
        "id": port.id,
        "name": port.name,
        "network_id": port.network.id,
        "tenant_id": project_id,
        "project_id": project_id,
        "mac_address": port.mac,
        "admin_state_up": True,
        "status": world.port_state(port) if attached else "DOWN",
        "device_id": port.server_id or "",
        "device_owner": "compute:nova" if attached else "",
        "fixed_ips": fixed,
        "security_groups": list(port.security_groups),
        "port_security_enabled": port.port_security,
        "allowed_address_pairs": [dict(p) for p in port.address_pairs],
        "binding:vnic_type": "normal",
        "updated_at": _iso(wall),
    }


def _pairs(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise _bad("Invalid input for allowed_address_pairs. Reason: must be a list.")
    if len(raw) > MAX_PAIRS:
        raise _bad(f"Invalid input for allowed_address_pairs. Reason: at most {MAX_PAIRS} pairs are allowed.")
    out: list[dict[str, str]] = []
    for pair in raw:
        if (
            not isinstance(pair, dict)
            or not isinstance(pair.get("ip_address"), str)
            or set(pair) - {"ip_address", "mac_address"}
        ):
            raise _bad(
                f"Invalid input for allowed_address_pairs. Reason: {pair!r} is not {{ip_address, mac_address?}}."
            )
        try:
            ipaddress.ip_network(pair["ip_address"], strict=False)
        except ValueError:
            raise _bad(
                f"Invalid input for allowed_address_pairs. Reason: '{pair['ip_address']}' is not a valid IP."
            ) from None
        entry = {"ip_address": pair["ip_address"]}
        mac = pair.get("mac_address")
        if mac is not None:
            if not isinstance(mac, str) or len(mac.split(":")) != 6:
                raise _bad(f"Invalid input for allowed_address_pairs. Reason: '{mac}' is not a valid MAC address.")
            entry["mac_address"] = mac.lower()
        out.append(entry)
    return out


def update(world: World, port_id: str, body: Any) -> Port:
    """Neutron's port update: only the keys given change; the checks come first, so a refusal changes nothing."""
    port = port_of(world, port_id)
    wanted = body.get("port") if isinstance(body, dict) else None
    if not isinstance(wanted, dict) or set(body) != {"port"}:
        raise _bad('Resource body required: {"port": {...}}.')
    unknown = set(wanted) - UPDATABLE
    if unknown:
        raise _bad(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    groups = port.security_groups
    if "security_groups" in wanted:
        raw = wanted["security_groups"]
        if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
            raise _bad("Invalid input for security_groups. Reason: must be a list of security group IDs.")
        for gid in raw:
            if gid not in world.security_groups:
                raise NeutronError(404, "SecurityGroupNotFound", f"Security group {gid} does not exist")
        groups = list(dict.fromkeys(raw))
    pairs = _pairs(wanted["allowed_address_pairs"]) if "allowed_address_pairs" in wanted else port.address_pairs
    security = port.port_security
    if "port_security_enabled" in wanted:
        if not isinstance(wanted["port_security_enabled"], bool):
            raise _bad("Invalid input for port_security_enabled. Reason: must be a boolean.")
        security = wanted["port_security_enabled"]
    for key in ("name", "description"):
        if key in wanted and not isinstance(wanted[key], str):
            raise _bad(f"Invalid input for {key}. Reason: must be a string.")
    if not security and groups:
        raise NeutronError(
            409,
            "PortSecurityPortHasSecurityGroup",
            "Port has security group associated. Cannot disable port security or ip address until security "
            "group is removed",
        )
    if not security and pairs:
        raise NeutronError(
            409,
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        )
    port.security_groups, port.address_pairs, port.port_security = groups, pairs, security
    if isinstance(wanted.get("name"), str):
        port.name = wanted["name"]
    port.updated_at = world.clock()
    return port
