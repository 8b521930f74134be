"""In-memory model of servers, networks and ports, with Nova's os-interface semantics.

Everything is a dict lookup; time-dependent state is computed lazily from timestamps (no timer per
port): ``port_state`` is DOWN until ``attached_at + activeAfter``, and a detaching port is removed when
the first operation after its ``detach_at`` runs (a heap of due detaches is drained on every access).
IP allocation per network returns the lowest free host address (skipping the network address, the
``.1`` gateway and the broadcast address) in amortised O(log n) using a cursor and a heap of freed
addresses below it.

Every refusal carries both answers: Nova's (status, kind, message) and Huawei's (status, ``Ecs.xxxx``,
message), and the server renders the one its dialect speaks. Server states: ``ACTIVE``; ``busy`` (in a
task state for ``taskTime`` seconds after every accepted attach/detach, and at the start); ``locked``
(every attach/detach refused); ``stopped`` (detaches always complete, stuck ones at once).
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SERVER_STATES = ("ACTIVE", "busy", "locked", "stopped")


class NovaError(Exception):
    """An error Nova would answer with ``{"<kind>": {"code": status, "message": message}}``; ``ecs`` is
    what Huawei's ECS answers for the same situation (status, code, message), None where it answers
    like Nova."""

    def __init__(self, status: int, kind: str, message: str, ecs: tuple[int, str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.ecs = ecs


def not_found(message: str, ecs: tuple[int, str, str] | None = None) -> NovaError:
    return NovaError(404, "itemNotFound", message, ecs=ecs)


def bad_request(message: str, ecs: tuple[int, str, str] | None = None) -> NovaError:
    return NovaError(400, "badRequest", message, ecs=ecs)


def conflict(message: str, ecs: tuple[int, str, str] | None = None) -> NovaError:
    return NovaError(409, "conflictingRequest", message, ecs=ecs)


def forbidden(message: str, ecs: tuple[int, str, str] | None = None) -> NovaError:
    return NovaError(403, "forbidden", message, ecs=ecs)


@dataclass(eq=False)
class Network:
    id: str
    subnet_id: str
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    used: dict[int, str] = field(default_factory=dict)  # ip (int) -> port id
    cursor: int = 0  # every host address below cursor is used, except those in `freed`
    freed: list[int] = field(default_factory=list)  # heap
    v6: Network | None = None  # the network's IPv6 subnet, if it has one (seed ipv6Cidr / ipv6SubnetId)

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
            raise conflict(
                f"No more IP addresses available on network {self.id}.",
                ecs=(400, "Ecs.0012", f"Subnet {self.subnet_id} has no free IP addresses (network {self.id})."),
            )
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
    detach_at: float | None = None  # math.inf: the detach was accepted and never completes (stuck)
    down_forever: bool = False  # an attach whose port never leaves DOWN (until the server's state changes)
    pci_slot: int = 0
    # Neutron's port properties (PUT /v2.0/ports/{id}, simulator/neutron.py)
    security_groups: list[str] = field(default_factory=list)
    port_security: bool = True
    address_pairs: list[dict[str, str]] = field(default_factory=list)
    name: str = ""
    ip6: int | None = None  # the IPv6 address (v1 attach with ipv6_enable), on the network's IPv6 subnet
    ipv6_bandwidth: str | None = None
    updated_at: float = 0.0


@dataclass(eq=False)
class Server:
    id: str
    max_nics: int
    ports: dict[str, Port] = field(default_factory=dict)  # insertion-ordered
    mutating_calls: int = 0
    state: str = "ACTIVE"
    busy_until: float = 0.0


class World:
    def __init__(
        self,
        seed: dict[str, Any],
        clock: Callable[[], float],
        behaviour: dict[str, Any],
        id_rng: random.Random | None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.behaviour = behaviour  # shared, live dict
        self.id_rng = id_rng
        self.rng = rng or random.Random()  # fault draws (stuck operations, which busy code)
        self.networks: dict[str, Network] = {}
        self.servers: dict[str, Server] = {}
        self.ports: dict[str, Port] = {}
        self.macs: set[str] = set()
        self._detaching: list[tuple[float, int, str]] = []  # heap (detach_at, seq, port_id)
        self._seq = 0
        # Called with the time on every settle(): v1 jobs finish there (simulator/jobs.py), without a timer.
        self.on_settle: list[Callable[[float], None]] = []
        self.on_state: list[Callable[[Server], None]] = []  # after a server's state was set
        self.security_groups: dict[str, str] = {
            g["id"]: str(g.get("name") or "") for g in seed.get("securityGroups", [])
        }
        for n in seed["networks"]:
            network = Network(n["id"], n["subnetId"], ipaddress.ip_network(n["cidr"], strict=False))
            if n.get("ipv6Cidr"):
                network.v6 = Network(n["id"], n["ipv6SubnetId"], ipaddress.ip_network(n["ipv6Cidr"], strict=False))
            self.networks[n["id"]] = network
        for s in seed["servers"]:
            self.add_server(s["id"], int(s["maxNics"]), str(s.get("state") or "ACTIVE"))
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
        for hook in self.on_settle:
            hook(now)
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

    def remove_nic(self, port: Port) -> None:
        """Huawei's v1 delete: the NIC leaves its server and the port is deleted, however it was attached."""
        server = self.servers.get(port.server_id or "")
        if server is not None:
            server.ports.pop(port.id, None)
        port.server_id = None
        port.detach_at = None
        self._delete_port(port)

    def _delete_port(self, port: Port) -> None:
        self.ports.pop(port.id, None)
        port.network.release(port.ip)
        if port.ip6 is not None and port.network.v6 is not None:
            port.network.v6.release(port.ip6)
        self.macs.discard(port.mac)

    def default_security_groups(self) -> list[str]:
        """What Neutron gives a new port: the project's group named "default", if the seed has one."""
        return [gid for gid, name in self.security_groups.items() if name == "default"][:1]

    def port_state(self, port: Port) -> str:
        if port.server_id is None or port.down_forever:
            return "DOWN"
        active_after = float(self.behaviour["activeAfter"])
        return "ACTIVE" if self.clock() - port.attached_at >= active_after else "DOWN"

    def view(self, port: Port, tag: bool = False) -> dict[str, Any]:
        fixed = [{"subnet_id": port.network.subnet_id, "ip_address": port.network.ip_str(port.ip)}]
        if port.ip6 is not None and port.network.v6 is not None:
            fixed.append({"subnet_id": port.network.v6.subnet_id, "ip_address": port.network.v6.ip_str(port.ip6)})
        out: dict[str, Any] = {
            "port_state": self.port_state(port),
            "fixed_ips": fixed,
            "port_id": port.id,
            "net_id": port.network.id,
            "mac_addr": port.mac,
        }
        if tag:
            out["tag"] = None
        return out

    # -- control ---------------------------------------------------------------------------------
    def add_server(self, server_id: str, max_nics: int, state: str = "ACTIVE") -> Server:
        if server_id in self.servers:
            raise conflict(f"Server {server_id} already exists.")
        server = Server(server_id, max_nics)
        self.servers[server_id] = server
        self.set_state(server_id, state)
        return server

    def set_state(self, server_id: str, state: str) -> None:
        """Control: put a server in a state. Any change brings stuck-DOWN ports up (a reboot would);
        ``stopped`` finishes stuck detaches, as stopping the ECS does for flavors that need it."""
        if state not in SERVER_STATES:
            raise bad_request(f"state must be one of {', '.join(SERVER_STATES)}, not {state!r}")
        server = self._server(server_id)
        server.state = state
        now = self.clock()
        server.busy_until = now + float(self.behaviour["taskTime"]) if state == "busy" else 0.0
        for port in list(server.ports.values()):  # a detach with detachAfter 0 finishes in the loop
            if port.down_forever:
                port.down_forever = False
                port.attached_at = now - float(self.behaviour["activeAfter"])
            if state == "stopped" and port.detach_at == math.inf:
                self._schedule_detach(port, now)
        for hook in self.on_state:
            hook(server)

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
        port.security_groups = self.default_security_groups()
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
            raise not_found(
                f"Instance {server_id} could not be found.",
                ecs=(404, "Ecs.0614", f"The ECS {server_id} does not exist."),
            )
        return server

    def _check_fixed_ip(self, network: Network, ip: str) -> int:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as exc:
            raise bad_request(f"Invalid fixed IP address ({ip})") from exc
        if addr not in network.net or not network.valid_host(int(addr)):
            raise bad_request(
                f"Invalid input for field/attribute fixed_ips. IP address {ip} is not a valid IP "
                f"for the specified subnet {network.subnet_id} ({network.net}).",
                ecs=(400, "Ecs.0039", f"IP address {ip} is not in subnet {network.subnet_id} ({network.net})."),
            )
        holder_id = network.used.get(int(addr))
        if holder_id is not None:
            holder = self.ports.get(holder_id)
            where = holder.server_id if holder is not None and holder.server_id else f"port {holder_id}"
            raise conflict(
                f"Fixed IP address {ip} is already in use on instance {where}.",
                ecs=(400, "Ecs.0010", f"The private IP address {ip} is already in use (instance {where})."),
            )
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
        ip = fixed_ips[0]["ip_address"] if fixed_ips else None
        return self.plug(server, net_id=net_id, port_id=port_id, fixed_ip=ip)

    def network_for(self, net_id: str) -> Network:
        network = self.networks.get(net_id)
        if network is None:
            raise not_found(
                f"Network {net_id} could not be found.",
                ecs=(400, "Ecs.0038", f"The subnet (network {net_id}) does not exist."),
            )
        return network

    def free_port(self, port_id: str) -> Port:
        port = self.ports.get(port_id)
        if port is None:
            raise not_found(f"Port {port_id} could not be found.")
        if port.server_id is not None:
            raise conflict(
                f"Port {port_id} is still in use.",
                ecs=(400, "Ecs.0919", f"The NIC {port_id} is attached to another instance ({port.server_id})."),
            )
        return port

    def plug(
        self,
        server: Server,
        *,
        net_id: str | None = None,
        port_id: str | None = None,
        fixed_ip: str | None = None,
        security_groups: list[str] | None = None,
        ipv6: bool = False,
        bandwidth: str | None = None,
    ) -> Port:
        """Attach an existing free port, or a new one on a network: the part of an attach after the request
        was accepted (v2.1 at once, v1 when its job runs, so its refusals become the job's failure)."""
        if port_id:
            port = self.free_port(port_id)
            self._check_quota(server)
        else:
            assert net_id is not None
            network = self.network_for(net_id)
            self._check_quota(server)
            if ipv6 and network.v6 is None:
                raise bad_request(f"Network {net_id} has no IPv6 subnet.")
            new_id = self.new_uuid()
            if fixed_ip:
                ip_int = self._check_fixed_ip(network, fixed_ip)
                network.take(ip_int, new_id)
            else:
                ip_int = network.allocate(new_id)
            port = Port(new_id, network, ip_int, self.new_mac(), created_by_nova=True)
            if ipv6 and network.v6 is not None:
                try:
                    port.ip6 = network.v6.allocate(new_id)
                except NovaError:
                    network.release(ip_int)
                    raise
                port.ipv6_bandwidth = bandwidth
            port.security_groups = list(security_groups) if security_groups else self.default_security_groups()
            self.ports[new_id] = port
        port.server_id = server.id
        port.attached_at = self.clock()
        port.detach_at = None
        port.down_forever = self.rng.random() < float(self.behaviour["attachStuckRate"] or 0)
        used = {p.pci_slot for p in server.ports.values()}
        port.pci_slot = next(slot for slot in range(3, 32 + len(used)) if slot not in used)
        server.ports[port.id] = port
        self._accepted(server)
        return port

    def _check_quota(self, server: Server) -> None:
        if len(server.ports) >= server.max_nics:
            raise forbidden(
                "Maximum number of ports exceeded",
                ecs=(
                    400,
                    "Ecs.0050",
                    f"Maximum number of ports exceeded: the NICs on ECS {server.id} exceed its quota.",
                ),
            )

    def _busy(self, server: Server, action: str) -> None:
        """Refuse a mutating call the server's state does not allow (counts every attempt for busyFirst)."""
        server.mutating_calls += 1
        if server.state == "locked":
            raise conflict(
                f"Instance {server.id} is locked",
                ecs=(400, "Ecs.0605", f"ECS {server.id} is locked."),
            )
        in_task = server.mutating_calls <= int(self.behaviour["busyFirst"] or 0) or self.clock() < server.busy_until
        if not in_task:
            return
        nova = f"Cannot '{action}' instance {server.id} while it is in task_state interface_attaching"
        if self.rng.random() < float(self.behaviour["busy501Rate"] or 0):
            ecs = (501, "Ecs.0603", "Other commands are being executed on the ECS. Please try again 1 minute later.")
        else:
            ecs = (400, "Ecs.0100", f"The ECS {server.id} status does not allow the operation: {action}.")
        raise conflict(nova, ecs=ecs)

    def _accepted(self, server: Server) -> None:
        if server.state == "busy":
            server.busy_until = self.clock() + float(self.behaviour["taskTime"])

    def detach(self, server_id: str, port_id: str) -> None:
        server = self.server_for_call(server_id)
        self._busy(server, "detach_interface")
        port = server.ports.get(port_id)
        if port is None:
            raise not_found(f"Port {port_id} could not be found.")
        if port.primary:
            raise forbidden("The primary network interface cannot be detached.")
        if port.detach_at is not None and port.detach_at != math.inf:
            return  # already detaching: Nova accepts the repeat
        self._accepted(server)
        # A stuck detach is accepted and never completes; a repeat DELETE draws again.
        if server.state != "stopped" and self.rng.random() < float(self.behaviour["detachStuckRate"] or 0):
            port.detach_at = math.inf
            return
        self._schedule_detach(port, self.clock())

    def _schedule_detach(self, port: Port, now: float) -> None:
        detach_after = float(self.behaviour["detachAfter"])
        port.detach_at = now + detach_after
        if detach_after <= 0:
            self._finish_detach(port)
            return
        self._seq += 1
        heapq.heappush(self._detaching, (port.detach_at, self._seq, port.id))

    def v1_view(self, port: Port, extension: bool = False) -> dict[str, Any]:
        """A NIC as Huawei's v1 ``os-interface`` list shows it (``os-interface_extension`` adds one field)."""
        out = self.view(port)
        out.update(
            {
                "delete_on_termination": port.created_by_nova,
                "driver_mode": "virtio",
                "pci_address": f"0000:00:{port.pci_slot:02x}.0",
                "multiqueue_num": 1,
                "min_rate": 0,
            }
        )
        if extension:
            out["preserve_on_delete"] = not port.created_by_nova
        return out

    def free_nics(self, server: Server) -> int:
        return max(0, server.max_nics - len(server.ports))

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        self.settle()
        return {sid: [self.view(p) for p in s.ports.values()] for sid, s in self.servers.items()}

    def stuck(self) -> dict[str, list[str]]:
        """Per server, the ports whose detach was accepted and never completes, and those stuck DOWN."""
        detach = [p.id for p in self.ports.values() if p.detach_at == math.inf]
        down = [p.id for p in self.ports.values() if p.down_forever and p.server_id is not None]
        return {"detach": sorted(detach), "attach": sorted(down)}
