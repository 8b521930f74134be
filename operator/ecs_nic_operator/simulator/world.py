"""In-memory model of servers, networks and ports, with Nova's os-interface semantics.

Everything is a dict lookup; time-dependent state is computed lazily from timestamps (no timer per
port): ``port_state`` is DOWN until ``attached_at + activeAfter``, and a detaching port is removed when
the first operation after its ``detach_at`` runs (a heap of due detaches is drained on every access).
IP allocation per network returns the lowest free host address (skipping the network address, the
``.1`` gateway and the broadcast address) in amortised O(log n) using a cursor and a heap of freed
addresses below it.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class NovaError(Exception):
    """An error Nova would answer with ``{"<kind>": {"code": status, "message": message}}``."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def not_found(message: str) -> NovaError:
    return NovaError(404, "itemNotFound", message)


def bad_request(message: str) -> NovaError:
    return NovaError(400, "badRequest", message)


def conflict(message: str) -> NovaError:
    return NovaError(409, "conflictingRequest", message)


def forbidden(message: str) -> NovaError:
    return NovaError(403, "forbidden", message)


@dataclass(eq=False)
class Network:
    id: str
    subnet_id: str
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    used: dict[int, str] = field(default_factory=dict)  # ip (int) -> port id
    cursor: int = 0  # every host address below cursor is used, except those in `freed`
    freed: list[int] = field(default_factory=list)  # heap

    def __post_init__(self) -> None:
        self.first = int(self.net.network_address) + 2  # skip network address and .1 gateway
        last = int(self.net.broadcast_address)
        self.last = last - 1 if self.net.version == 4 and self.net.num_addresses > 2 else last
        self.cursor = self.first

    def valid_host(self, ip: int) -> bool:
        return self.first <= ip <= self.last

    def allocate(self, port_id: str) -> int:
        while self.freed:
            ip = heapq.heappop(self.freed)
            if ip not in self.used:
                self.used[ip] = port_id
                return ip
        while self.cursor <= self.last and self.cursor in self.used:
            self.cursor += 1
        if self.cursor > self.last:
            raise NovaError(409, "conflictingRequest", f"No more IP addresses available on network {self.id}.")
        ip = self.cursor
        self.cursor += 1
        self.used[ip] = port_id
        return ip

    def take(self, ip: int, port_id: str) -> None:
        self.used[ip] = port_id

    def release(self, ip: int) -> None:
        self.used.pop(ip, None)
        if ip < self.cursor:
            heapq.heappush(self.freed, ip)

    def ip_str(self, ip: int) -> str:
        return str(ipaddress.ip_address(ip))


@dataclass(eq=False)
class Port:
    id: str
    network: Network
    ip: int
    mac: str
    created_by_nova: bool  # created from net_id: deleted on detach
    primary: bool = False
    server_id: str | None = None
    attached_at: float = 0.0
    detach_at: float | None = None


@dataclass(eq=False)
class Server:
    id: str
    max_nics: int
    ports: dict[str, Port] = field(default_factory=dict)  # insertion-ordered
    mutating_calls: int = 0


class World:
    def __init__(
        self,
        seed: dict[str, Any],
        clock: Callable[[], float],
        behaviour: dict[str, Any],
        id_rng: random.Random | None,
    ) -> None:
        self.clock = clock
        self.behaviour = behaviour  # shared, live dict
        self.id_rng = id_rng
        self.networks: dict[str, Network] = {}
        self.servers: dict[str, Server] = {}
        self.ports: dict[str, Port] = {}
        self.macs: set[str] = set()
        self._detaching: list[tuple[float, int, str]] = []  # heap (detach_at, seq, port_id)
        self._seq = 0
        for n in seed["networks"]:
            self.networks[n["id"]] = Network(n["id"], n["subnetId"], ipaddress.ip_network(n["cidr"], strict=False))
        for s in seed["servers"]:
            self.add_server(s["id"], int(s["maxNics"]))
        for p in seed["ports"]:
            self.add_port(
                p["netId"],
                port_id=p["id"],
                ip=p.get("ipAddress"),
                mac=p.get("macAddr"),
                server_id=p.get("serverId"),
                primary=bool(p.get("primary", False)),
            )

    # -- ids -------------------------------------------------------------------------------------
    def new_uuid(self) -> str:
        if self.id_rng is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4))

    def new_mac(self) -> str:
        rnd = self.id_rng.getrandbits if self.id_rng is not None else random.getrandbits
        while True:
            mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in rnd(24).to_bytes(3, "big"))
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    # -- lazy time -------------------------------------------------------------------------------
    def settle(self) -> None:
        """Finish every detach that is due."""
        now = self.clock()
        heap = self._detaching
        while heap and heap[0][0] <= now:
            _, _, port_id = heapq.heappop(heap)
            port = self.ports.get(port_id)
            if port is not None and port.detach_at is not None and port.detach_at <= now:
                self._finish_detach(port)

    def _finish_detach(self, port: Port) -> None:
        server = self.servers.get(port.server_id or "")
        if server is not None:
            server.ports.pop(port.id, None)
        port.server_id = None
        port.detach_at = None
        if port.created_by_nova:
            self._delete_port(port)

    def _delete_port(self, port: Port) -> None:
        self.ports.pop(port.id, None)
        port.network.release(port.ip)
        self.macs.discard(port.mac)

    def port_state(self, port: Port) -> str:
        if port.server_id is None:
            return "DOWN"
        active_after = float(self.behaviour["activeAfter"])
        return "ACTIVE" if self.clock() - port.attached_at >= active_after else "DOWN"

    def view(self, port: Port, tag: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "port_state": self.port_state(port),
            "fixed_ips": [{"subnet_id": port.network.subnet_id, "ip_address": port.network.ip_str(port.ip)}],
            "port_id": port.id,
            "net_id": port.network.id,
            "mac_addr": port.mac,
        }
        if tag:
            out["tag"] = None
        return out

    # -- control ---------------------------------------------------------------------------------
    def add_server(self, server_id: str, max_nics: int) -> Server:
        if server_id in self.servers:
            raise conflict(f"Server {server_id} already exists.")
        server = Server(server_id, max_nics)
        self.servers[server_id] = server
        return server

    def add_network(self, net_id: str, subnet_id: str, cidr: str) -> Network:
        if net_id in self.networks:
            raise conflict(f"Network {net_id} already exists.")
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise bad_request(f"Invalid cidr {cidr!r}: {exc}") from exc
        network = self.networks[net_id] = Network(net_id, subnet_id, net)
        return network

    def delete_server(self, server_id: str) -> None:
        self.settle()
        server = self.servers.pop(server_id, None)
        if server is None:
            raise not_found(f"Instance {server_id} could not be found.")
        for port in list(server.ports.values()):
            port.server_id = None
            port.detach_at = None
            if port.created_by_nova:
                self._delete_port(port)

    def add_port(
        self,
        net_id: str,
        *,
        port_id: str | None = None,
        ip: str | None = None,
        mac: str | None = None,
        server_id: str | None = None,
        primary: bool = False,
    ) -> Port:
        network = self.networks.get(net_id)
        if network is None:
            raise not_found(f"Network {net_id} could not be found.")
        port_id = port_id or self.new_uuid()
        if port_id in self.ports:
            raise conflict(f"Port {port_id} already exists.")
        if ip is not None:
            ip_int = self._check_fixed_ip(network, ip)
            network.take(ip_int, port_id)
        else:
            ip_int = network.allocate(port_id)
        if mac is not None:
            self.macs.add(mac)
        port = Port(port_id, network, ip_int, mac or self.new_mac(), created_by_nova=False, primary=primary)
        self.ports[port_id] = port
        if server_id is not None:
            server = self.servers[server_id]
            port.server_id = server_id
            port.attached_at = self.clock() - float(self.behaviour["activeAfter"])
            server.ports[port_id] = port
        return port

    def force_detach(self, server_id: str, port_id: str) -> None:
        """Out-of-band detach, effective immediately (drift: someone used the console)."""
        self.settle()
        server = self._server(server_id)
        port = server.ports.get(port_id)
        if port is None:
            raise not_found(f"Port {port_id} is not attached to instance {server_id}.")
        self._finish_detach(port)

    # -- Nova API --------------------------------------------------------------------------------
    def _server(self, server_id: str) -> Server:
        server = self.servers.get(server_id)
        if server is None:
            raise not_found(f"Instance {server_id} could not be found.")
        return server

    def _check_fixed_ip(self, network: Network, ip: str) -> int:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as exc:
            raise bad_request(f"Invalid fixed IP address ({ip})") from exc
        if addr not in network.net or not network.valid_host(int(addr)):
            raise bad_request(
                f"Invalid input for field/attribute fixed_ips. IP address {ip} is not a valid IP "
                f"for the specified subnet {network.subnet_id} ({network.net})."
            )
        holder_id = network.used.get(int(addr))
        if holder_id is not None:
            holder = self.ports.get(holder_id)
            where = holder.server_id if holder is not None and holder.server_id else f"port {holder_id}"
            raise conflict(f"Fixed IP address {ip} is already in use on instance {where}.")
        return int(addr)

    def server_for_call(self, server_id: str) -> Server:
        self.settle()
        return self._server(server_id)

    def list_interfaces(self, server_id: str) -> list[Port]:
        return list(self.server_for_call(server_id).ports.values())

    def get_interface(self, server_id: str, port_id: str) -> Port:
        server = self.server_for_call(server_id)
        port = server.ports.get(port_id)
        if port is None:
            raise not_found(f"Instance {server_id} does not have a port with id {port_id}")
        return port

    def attach(self, server_id: str, body: Any) -> Port:
        self.settle()
        if not isinstance(body, dict) or not isinstance(body.get("interfaceAttachment", {}), dict):
            raise bad_request("Invalid input for field/attribute interfaceAttachment.")
        spec: dict[str, Any] = body.get("interfaceAttachment") or {}
        extra = set(spec) - {"net_id", "port_id", "fixed_ips", "tag"}
        if extra:
            raise bad_request(
                "Invalid input for field/attribute interfaceAttachment. Value: "
                f"{spec}. Additional properties are not allowed ({', '.join(sorted(extra))} "
                "was unexpected)"
            )
        net_id, port_id, fixed_ips = spec.get("net_id"), spec.get("port_id"), spec.get("fixed_ips")
        if net_id and port_id:
            raise bad_request("Must not input both network_id and port_id")
        if fixed_ips is not None:
            if not net_id:
                raise bad_request("Must input network_id when request IP address")
            if (
                not isinstance(fixed_ips, list)
                or len(fixed_ips) != 1
                or not isinstance(fixed_ips[0], dict)
                or not isinstance(fixed_ips[0].get("ip_address"), str)
            ):
                raise bad_request(
                    "Invalid input for field/attribute fixed_ips. Value: "
                    f"{fixed_ips}. Exactly one fixed_ips entry with an ip_address is allowed"
                )
        for key, val in (("net_id", net_id), ("port_id", port_id)):
            if val is not None and not isinstance(val, str):
                raise bad_request(f"Invalid input for field/attribute {key}. Value: {val}.")
        server = self._server(server_id)
        self._busy(server, "attach_interface")
        if not net_id and not port_id:
            # Nova would pick a network for the tenant; this simulator requires one explicitly.
            raise bad_request("Must input network_id or port_id")
        if port_id:
            port = self.ports.get(port_id)
            if port is None:
                raise not_found(f"Port {port_id} could not be found.")
            if port.server_id is not None:
                raise conflict(f"Port {port_id} is still in use.")
            self._check_quota(server)
        else:
            assert net_id is not None
            network = self.networks.get(net_id)
            if network is None:
                raise not_found(f"Network {net_id} could not be found.")
            self._check_quota(server)
            new_id = self.new_uuid()
            if fixed_ips:
                ip_int = self._check_fixed_ip(network, fixed_ips[0]["ip_address"])
                network.take(ip_int, new_id)
            else:
                ip_int = network.allocate(new_id)
            port = Port(new_id, network, ip_int, self.new_mac(), created_by_nova=True)
            self.ports[new_id] = port
        port.server_id = server_id
        port.attached_at = self.clock()
        port.detach_at = None
        server.ports[port.id] = port
        return port

    def _check_quota(self, server: Server) -> None:
        if len(server.ports) >= server.max_nics:
            raise forbidden("Maximum number of ports exceeded")

    def _busy(self, server: Server, action: str) -> None:
        server.mutating_calls += 1
        if server.mutating_calls <= int(self.behaviour["busyFirst"] or 0):
            raise conflict(f"Cannot '{action}' instance {server.id} while it is in task_state interface_attaching")

    def detach(self, server_id: str, port_id: str) -> None:
        server = self.server_for_call(server_id)
        self._busy(server, "detach_interface")
        port = server.ports.get(port_id)
        if port is None:
            raise not_found(f"Port {port_id} could not be found.")
        if port.primary:
            raise forbidden("The primary network interface cannot be detached.")
        if port.detach_at is not None:
            return  # already detaching: Nova accepts the repeat
        detach_after = float(self.behaviour["detachAfter"])
        port.detach_at = self.clock() + detach_after
        if detach_after <= 0:
            self._finish_detach(port)
            return
        self._seq += 1
        heapq.heappush(self._detaching, (port.detach_at, self._seq, port.id))

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        self.settle()
        return {sid: [self.view(p) for p in s.ports.values()] for sid, s in self.servers.items()}
