"""Seed files for the simulator: loading, validation/normalisation and the default world.

A seed is a mapping (YAML or JSON) shaped as in API.md::

    projectId: 0605767ea3000f0b2f0ac01c2e4ce6bd
    credentials: {token, accessKey, secretKey, securityToken?, username, password, domainName}
    servers: [{id, maxNics, state?}]   # state: ACTIVE (default) | busy | locked | stopped
    networks: [{id, subnetId, cidr, ipv6SubnetId?, ipv6Cidr?}]   # an IPv6 subnet for v1's ipv6_enable
    ports: [{id, netId}]          # free ports, attachable by portId
    securityGroups: [{id, name}]  # the one named "default" is what a new port gets
    behaviour: {dialect, latency, activeAfter, detachAfter, failRate, busyFirst, qps, ...}

Optional extras: a port may carry ``ipAddress`` and ``macAddr`` (otherwise allocated), and ``serverId``
to start already attached to that server (e.g. a primary NIC; add ``primary: true`` to refuse its
detach with 403 like the real cloud). See ``DEFAULT_BEHAVIOUR`` for all behaviour keys.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import random
import uuid
from pathlib import Path
from typing import Any

import yaml

from .world import SERVER_STATES

DIALECTS = ("huawei", "nova")
DEFAULT_PROJECT_ID = "0605767ea3000f0b2f0ac01c2e4ce6bd"

#: Every behaviour key with its default. Times are seconds, rates are shares in [0, 1].
DEFAULT_BEHAVIOUR: dict[str, Any] = {
    # "huawei": refusals as Huawei's ECS answers them (400 + Ecs.xxxx, gateway APIGW codes) and the v1
    # read calls; "nova": upstream OpenStack Nova's answers, no v1 API.
    "dialect": "huawei",
    "latency": 0.0,  # added to every API call (asyncio.sleep, others are not blocked)
    "activeAfter": 2.0,  # a new attachment reports port_state DOWN, then ACTIVE after this long
    "detachAfter": 1.0,  # a detached port stays listed (state unchanged) for this long
    "failRate": 0.0,  # share of API calls answered 500 computeFault / 503 gateway (alternating)
    "busyFirst": 0,  # first N POST/DELETE per server are refused as busy (Nova 409 task_state; Huawei 400 Ecs.0100)
    "taskTime": 1.0,  # a server in state "busy" stays in a task state this long after each accepted attach/detach
    "busy501Rate": 0.0,  # share of busy refusals answered 501 Ecs.0603 "try again 1 minute later" (huawei)
    "lostReplyRate": 0.0,  # share of successful POST/DELETE whose answer is lost: a gateway 504 after the change
    "detachStuckRate": 0.0,  # share of DELETEs accepted (202) whose port never goes (until the server is stopped)
    "attachStuckRate": 0.0,  # share of attaches whose port stays DOWN (until the server's state is set again)
    "jobTime": 1.0,  # a v1 NIC job reports INIT, then RUNNING, and ends this long after its POST (simulator/jobs.py)
    "jobSlowRate": 0.0,  # share of v1 jobs that take slowDelay longer
    "jobFailRate": 0.0,  # share of v1 jobs that end in FAIL (Ecs.1000) having created or deleted nothing
    "qps": 0,  # > 0: API calls above this many per sliding second answer 429 APIGW.0308
    "retryAfter": None,  # when set, 429 responses carry Retry-After: <value>
    "slowRate": 0.0,  # share of API calls delayed by an extra slowDelay
    "slowDelay": 5.0,
    "dropRate": 0.0,  # share of API calls whose connection is closed without any response
    "dropAfterCommit": False,  # True: for POST/DELETE the drop happens after the state change
    "replyDelay": 0.0,  # seconds a POST/DELETE waits after its state change before answering (crash windows)
    "tokenTtl": 86400,  # lifetime of tokens issued by the fake Keystone
    "clockSkew": 900,  # AK/SK: X-Sdk-Date further than this from now is rejected
    "randomSeed": None,  # seeds the fault draws and generated IDs/MACs (reproducible runs)
}


class SeedError(ValueError):
    """The seed does not describe a valid world."""


def load_seed(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON seed file and return it normalised (see :func:`normalise_seed`)."""
    text = Path(path).read_text(encoding="utf-8")
    data: Any
    try:
        data = json.loads(text)
    except ValueError:
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SeedError(f"{path}: a seed must be a mapping")
    return normalise_seed(data)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def default_seed() -> dict[str, Any]:
    """A small deterministic world: 4 servers, 2 networks, 4 free ports (the same IDs every time)."""
    rng = random.Random(20240601)
    networks = [
        {"id": _uuid(rng), "subnetId": _uuid(rng), "cidr": "192.168.0.0/16"},
        {"id": _uuid(rng), "subnetId": _uuid(rng), "cidr": "10.10.0.0/24"},
    ]
    servers = [{"id": _uuid(rng), "maxNics": 12} for _ in range(4)]
    ports = [{"id": _uuid(rng), "netId": networks[i % 2]["id"]} for i in range(4)]
    # Drawn after the rest, so the IDs above stay those of earlier versions.
    networks[0].update({"ipv6SubnetId": _uuid(rng), "ipv6Cidr": "2001:db8:a0::/64"})
    groups = [{"id": _uuid(rng), "name": "default"}, {"id": _uuid(rng), "name": "web"}]
    return normalise_seed(
        {
            "projectId": DEFAULT_PROJECT_ID,
            "credentials": {
                "token": "sim-token-" + rng.getrandbits(64).to_bytes(8, "big").hex(),
                "accessKey": "SIMAK" + rng.getrandbits(60).to_bytes(8, "big").hex().upper(),
                "secretKey": rng.getrandbits(160).to_bytes(20, "big").hex(),
                "username": "sim-user",
                "password": "sim-password",
                "domainName": "sim-domain",
            },
            "servers": servers,
            "networks": networks,
            "ports": ports,
            "securityGroups": groups,
            "behaviour": {"latency": 0.1, "activeAfter": 2.0, "detachAfter": 1.0},
        }
    )


def seed_to_yaml(seed: dict[str, Any]) -> str:
    return yaml.safe_dump(seed, sort_keys=False, default_flow_style=None, width=110)


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] in (None, ""):
        raise SeedError(f"{where}: missing {key!r}")
    return d[key]


def normalise_seed(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a seed and fill in defaults; returns a new dict (the input is not modified)."""
    seed = copy.deepcopy(raw)
    seed.setdefault("projectId", DEFAULT_PROJECT_ID)
    creds = seed.setdefault("credentials", {}) or {}
    if not isinstance(creds, dict):
        raise SeedError("credentials must be a mapping")
    creds = {k: (None if v is None else str(v)) for k, v in creds.items()}
    # securityToken: when set, the AK/SK are temporary and every signed request must carry it, signed.
    for k in ("token", "accessKey", "secretKey", "securityToken", "username", "password", "domainName"):
        creds.setdefault(k, None)
    seed["credentials"] = creds
    servers = seed.setdefault("servers", []) or []
    networks = seed.setdefault("networks", []) or []
    ports = seed.setdefault("ports", []) or []
    seen: set[str] = set()
    for i, s in enumerate(servers):
        sid = str(_req(s, "id", f"servers[{i}]"))
        if sid in seen:
            raise SeedError(f"servers[{i}]: duplicate id {sid}")
        seen.add(sid)
        s["id"] = sid
        s["maxNics"] = int(s.get("maxNics", 12))
        state = s.get("state") or "ACTIVE"
        if state not in SERVER_STATES:
            raise SeedError(f"servers[{i}]: state must be one of {', '.join(SERVER_STATES)}, not {state!r}")
        s["state"] = state
    net_ids: set[str] = set()
    for i, n in enumerate(networks):
        n["id"] = str(_req(n, "id", f"networks[{i}]"))
        n["subnetId"] = str(_req(n, "subnetId", f"networks[{i}]"))
        try:
            ipaddress.ip_network(str(_req(n, "cidr", f"networks[{i}]")), strict=False)
        except ValueError as exc:
            raise SeedError(f"networks[{i}]: bad cidr: {exc}") from exc
        n["cidr"] = str(n["cidr"])
        if n.get("ipv6Cidr"):
            n["ipv6SubnetId"] = str(_req(n, "ipv6SubnetId", f"networks[{i}]"))
            try:
                v6 = ipaddress.ip_network(str(n["ipv6Cidr"]), strict=False)
            except ValueError as exc:
                raise SeedError(f"networks[{i}]: bad ipv6Cidr: {exc}") from exc
            if v6.version != 6:
                raise SeedError(f"networks[{i}]: ipv6Cidr {n['ipv6Cidr']} is not an IPv6 network")
            n["ipv6Cidr"] = str(n["ipv6Cidr"])
        net_ids.add(n["id"])
    groups = seed.setdefault("securityGroups", []) or []
    group_ids: set[str] = set()
    for i, g in enumerate(groups):
        g["id"] = str(_req(g, "id", f"securityGroups[{i}]"))
        if g["id"] in group_ids:
            raise SeedError(f"securityGroups[{i}]: duplicate id {g['id']}")
        group_ids.add(g["id"])
        g["name"] = str(g.get("name") or "")
    seed["securityGroups"] = groups
    for i, p in enumerate(ports):
        p["id"] = str(_req(p, "id", f"ports[{i}]"))
        p["netId"] = str(_req(p, "netId", f"ports[{i}]"))
        if p["netId"] not in net_ids:
            raise SeedError(f"ports[{i}]: unknown network {p['netId']}")
        if p.get("serverId") is not None and str(p["serverId"]) not in seen:
            raise SeedError(f"ports[{i}]: unknown server {p['serverId']}")
    behaviour = seed.setdefault("behaviour", {}) or {}
    unknown = set(behaviour) - set(DEFAULT_BEHAVIOUR)
    if unknown:
        raise SeedError(f"behaviour: unknown keys {sorted(unknown)}")
    seed["behaviour"] = {**DEFAULT_BEHAVIOUR, **behaviour}
    if seed["behaviour"]["dialect"] not in DIALECTS:
        raise SeedError(f"behaviour.dialect must be one of {', '.join(DIALECTS)}, not {seed['behaviour']['dialect']!r}")
    seed["servers"], seed["networks"], seed["ports"] = servers, networks, ports
    return seed
