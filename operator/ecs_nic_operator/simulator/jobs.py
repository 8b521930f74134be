"""Huawei's v1 NIC calls and the jobs they answer with (``POST /v1/{p}/cloudservers/{s}/nics``,
``.../nics/delete``, ``GET /v1/{p}/jobs/{job_id}``).

A request is checked when it arrives (its shape, the server and its state, the subnet, the port, the
security groups, the address's syntax and range): those refusals are the call's own answer. What the cloud
decides only while the job runs (the NIC quota, an address already taken, a full subnet, an internal error)
ends the job in FAIL with the code the synchronous API would have answered, and nothing is created.

Timing is lazy, like the rest of the world: a job reports INIT for its first fifth, RUNNING until
``jobTime`` (plus ``slowDelay`` for a share ``jobSlowRate``) has passed, then its effect is applied on the
first access after that (``World.settle``) and it reports SUCCESS or FAIL. ``jobFailRate`` ends a share of jobs
in FAIL (``Ecs.1000``) without effect; ``detachStuckRate`` keeps a share of delete jobs RUNNING until the server
is stopped. A NIC being added is not listed until its job ends; one being deleted stays listed until then.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .world import NovaError, Server, World, bad_request, forbidden, not_found

ADD_KEYS = frozenset(
    {"subnet_id", "port_id", "security_groups", "ip_address", "ipv6_enable", "ipv6_bandwidth", "efi_enable"}
)
INTERNAL = ("Ecs.1000", "Internal error in the compute service.")


def invalid(message: str) -> NovaError:
    """Huawei's answer to a request body it cannot use (``Ecs.0005``, invalid parameter)."""
    return bad_request(message, ecs=(400, "Ecs.0005", message))


@dataclass(eq=False)
class SubJob:
    id: str
    nic_id: str | None = None
    error: tuple[str, str] | None = None  # (error_code, fail_reason)


@dataclass(eq=False)
class Job:
    id: str
    type: str  # batchAddNics | batchDeleteNics
    server_id: str
    begin: float  # world clock
    running_at: float  # INIT before this
    due: float  # math.inf: a stuck delete
    work: list[Callable[[], str]]  # one per sub-job, run when the job ends: the NIC id, or a NovaError
    subs: list[SubJob]
    wall_offset: float  # wall clock minus world clock, for begin_time/end_time
    fail: bool = False  # jobFailRate drew this one: every sub-job fails, nothing is done
    ended: float | None = None
    ports: list[str] = field(default_factory=list)  # delete jobs: the NICs being deleted

    def status(self, now: float) -> str:
        if self.ended is not None:
            return "FAIL" if any(s.error for s in self.subs) else "SUCCESS"
        return "INIT" if now < self.running_at else "RUNNING"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Jobs:
    """The jobs of one world; finishes them from ``World.settle``."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.jobs: dict[str, Job] = {}
        self._due: list[tuple[float, int, str]] = []  # heap (due, seq, job id)
        self._seq = 0
        world.on_settle.append(self.settle)
        world.on_state.append(self._state_changed)

    # -- requests -------------------------------------------------------------------------------
    def add_nics(self, server_id: str, body: Any) -> Job:
        world = self.world
        world.settle()
        nics = self._nics(body)
        options = [self._add_option(nic) for nic in nics]
        server = world._server(server_id)
        world._busy(server, "addNics")
        for opt in options:  # what the cloud checks before it accepts the job
            if opt["port_id"]:
                world.free_port(opt["port_id"])
            else:
                network = world.network_for(opt["net_id"])
                if opt["ipv6"] and network.v6 is None:
                    raise invalid(f"The subnet (network {opt['net_id']}) does not support IPv6.")
                if opt["fixed_ip"] is not None:
                    self._in_subnet(world, network.net, network.subnet_id, opt["fixed_ip"])

        def plug(opt: dict[str, Any]) -> Callable[[], str]:
            def run() -> str:
                return world.plug(
                    world._server(server_id),
                    net_id=opt["net_id"],
                    port_id=opt["port_id"],
                    fixed_ip=opt["fixed_ip"],
                    security_groups=opt["security_groups"],
                    ipv6=opt["ipv6"],
                    bandwidth=opt["bandwidth"],
                ).id

            return run

        world._accepted(server)
        return self._start("batchAddNics", server, [plug(o) for o in options])

    def delete_nics(self, server_id: str, body: Any) -> Job:
        world = self.world
        world.settle()
        nics = self._nics(body)
        ids: list[str] = []
        for nic in nics:
            if set(nic) - {"id"} or not isinstance(nic.get("id"), str) or not nic["id"]:
                raise invalid(f'Invalid NIC {nic}: each entry must be {{"id": <port id>}}.')
            ids.append(nic["id"])
        server = world._server(server_id)
        world._busy(server, "deleteNics")
        for pid in ids:
            port = server.ports.get(pid)
            if port is None:
                raise invalid(f"The NIC {pid} is not attached to ECS {server_id}.")
            if port.primary:
                err = forbidden("The primary network interface cannot be detached.")
                err.ecs = (400, "Ecs.0005", f"The primary NIC {pid} of ECS {server_id} cannot be deleted.")
                raise err

        def unplug(pid: str) -> Callable[[], str]:
            def run() -> str:
                port = world.ports.get(pid)
                if port is not None and port.server_id == server_id:
                    world.remove_nic(port)
                return pid  # already gone: the job has nothing left to do

            return run

        world._accepted(server)
        stuck = server.state != "stopped" and world.rng.random() < float(world.behaviour["detachStuckRate"] or 0)
        job = self._start("batchDeleteNics", server, [unplug(pid) for pid in ids], stuck=stuck)
        job.ports = ids
        return job

    @staticmethod
    def _nics(body: Any) -> list[dict[str, Any]]:
        nics = body.get("nics") if isinstance(body, dict) else None
        if not isinstance(nics, list) or not nics or not all(isinstance(n, dict) for n in nics):
            raise invalid("Invalid request body: 'nics' must be a non-empty list of objects.")
        if set(body) - {"nics"}:
            raise invalid(f"Invalid request body: unexpected {', '.join(sorted(set(body) - {'nics'}))}.")
        return nics

    def _add_option(self, nic: dict[str, Any]) -> dict[str, Any]:
        extra = set(nic) - ADD_KEYS
        if extra:
            raise invalid(f"Invalid NIC option: {', '.join(sorted(extra))} is not allowed.")
        for key in ("subnet_id", "port_id", "ip_address"):
            if nic.get(key) is not None and not isinstance(nic[key], str):
                raise invalid(f"Invalid NIC option: {key} must be a string.")
        port_id, net_id = nic.get("port_id") or None, nic.get("subnet_id") or None
        if not port_id and not net_id:
            raise invalid("Invalid NIC option: subnet_id or port_id is required.")
        groups = nic.get("security_groups")
        ids: list[str] = []
        if groups is not None:
            if not isinstance(groups, list) or not all(
                isinstance(g, dict) and isinstance(g.get("id"), str) for g in groups
            ):
                raise invalid('Invalid NIC option: security_groups must be a list of {"id": <uuid>}.')
            ids = [g["id"] for g in groups]
            for gid in ids:
                if gid not in self.world.security_groups:
                    raise invalid(f"The security group {gid} does not exist.")
        ipv6 = nic.get("ipv6_enable", False)
        if not isinstance(ipv6, bool):
            raise invalid("Invalid NIC option: ipv6_enable must be a boolean.")
        bandwidth = nic.get("ipv6_bandwidth")
        if bandwidth is not None:
            if not ipv6:
                raise invalid("Invalid NIC option: ipv6_bandwidth needs ipv6_enable.")
            if not isinstance(bandwidth, dict) or not isinstance(bandwidth.get("id"), str) or not bandwidth["id"]:
                raise invalid('Invalid NIC option: ipv6_bandwidth must be {"id": <uuid>}.')
        # With port_id the port's own properties stay (Huawei: security_groups and ip_address do not apply).
        return {
            "port_id": port_id,
            "net_id": None if port_id else net_id,
            "fixed_ip": None if port_id else nic.get("ip_address"),
            "security_groups": None if port_id else ids,
            "ipv6": bool(ipv6) and not port_id,
            "bandwidth": bandwidth["id"] if bandwidth and not port_id else None,
        }

    @staticmethod
    def _in_subnet(world: World, net: Any, subnet_id: str, ip: str) -> None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise invalid(f"Invalid IP address {ip!r}.") from None
        if addr not in net:
            raise bad_request(
                f"IP address {ip} is not a valid IP for the specified subnet {subnet_id} ({net}).",
                ecs=(400, "Ecs.0039", f"IP address {ip} is not in subnet {subnet_id} ({net})."),
            )

    # -- running --------------------------------------------------------------------------------
    def _start(self, kind: str, server: Server, work: list[Callable[[], str]], stuck: bool = False) -> Job:
        world, b = self.world, self.world.behaviour
        now = world.clock()
        took = float(b["jobTime"] or 0)
        if world.rng.random() < float(b["jobSlowRate"] or 0):
            took += float(b["slowDelay"] or 0)
        job = Job(
            id=world.new_uuid().replace("-", ""),
            type=kind,
            server_id=server.id,
            begin=now,
            running_at=now + took / 5,
            due=math.inf if stuck else now + took,
            work=work,
            subs=[SubJob(world.new_uuid().replace("-", "")) for _ in work],
            wall_offset=time.time() - now,
            fail=world.rng.random() < float(b["jobFailRate"] or 0),
        )
        self.jobs[job.id] = job
        self._schedule(job)
        return job

    def _schedule(self, job: Job) -> None:
        if job.due == math.inf:
            return
        if job.due <= self.world.clock():
            self._finish(job)
            return
        self._seq += 1
        heapq.heappush(self._due, (job.due, self._seq, job.id))

    def settle(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, job_id = heapq.heappop(self._due)
            job = self.jobs.get(job_id)
            if job is not None and job.ended is None and job.due <= now:
                self._finish(job)

    def _finish(self, job: Job) -> None:
        job.ended = job.due
        for sub, run in zip(job.subs, job.work, strict=True):
            if job.fail:
                sub.error = INTERNAL
                continue
            try:
                sub.nic_id = run()
            except NovaError as err:
                sub.error = (err.ecs[1], err.ecs[2]) if err.ecs is not None else ("Ecs.1000", err.message)

    def _state_changed(self, server: Server) -> None:
        """Stopping the server lets its stuck delete jobs end."""
        if server.state != "stopped":
            return
        now = self.world.clock()
        for job in self.jobs.values():
            if job.server_id == server.id and job.ended is None and job.due == math.inf:
                job.due = now + float(self.world.behaviour["jobTime"] or 0)
                self._schedule(job)

    # -- answers --------------------------------------------------------------------------------
    def view(self, job_id: str) -> dict[str, Any]:
        self.world.settle()
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(
                f"Job {job_id} could not be found.", ecs=(404, "Ecs.0005", f"The job {job_id} does not exist.")
            )
        now = self.world.clock()
        status = job.status(now)
        end = _iso(job.ended + job.wall_offset) if job.ended is not None else None
        sub_kind = "addNic" if job.type == "batchAddNics" else "deleteNic"
        subs = []
        for sub in job.subs:
            entities: dict[str, Any] = {"server_id": job.server_id}
            if sub.nic_id is not None:
                entities["nic_id"] = sub.nic_id
            if sub.error is not None:
                entities["errorcode_message"] = sub.error[1]
            subs.append(
                {
                    "status": status if job.ended is None else ("FAIL" if sub.error else "SUCCESS"),
                    "entities": entities,
                    "job_id": sub.id,
                    "job_type": sub_kind,
                    "begin_time": _iso(job.begin + job.wall_offset),
                    "end_time": end,
                    "error_code": sub.error[0] if sub.error else None,
                    "fail_reason": sub.error[1] if sub.error else None,
                }
            )
        failed = next((s.error for s in job.subs if s.error), None) if job.ended is not None else None
        return {
            "status": status,
            "entities": {"sub_jobs_total": len(subs), "sub_jobs": subs},
            "job_id": job.id,
            "job_type": job.type,
            "begin_time": _iso(job.begin + job.wall_offset),
            "end_time": end,
            "error_code": failed[0] if failed else None,
            "fail_reason": failed[1] if failed else None,
        }
