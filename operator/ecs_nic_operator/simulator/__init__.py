"""Simulator of the Huawei Cloud ECS / OpenStack Nova NIC API (``os-interface``), built on aiohttp.

Cloud API (authenticated with ``X-Auth-Token`` or AK/SK ``SDK-HMAC-SHA256``; every response carries
``X-Request-Id: req-<uuid>``):

- ``POST   /v2.1/{project_id}/servers/{server_id}/os-interface``            attach (200)
- ``GET    /v2.1/{project_id}/servers/{server_id}/os-interface``            list
- ``GET    /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}``  show (404 when not attached)
- ``DELETE /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}``  detach (202, asynchronous)
- ``GET /``, ``GET /v2.1[/]``: Nova version documents (no auth), for openstacksdk's discovery.
- Fake Keystone: ``GET /v3[/]`` (version document), ``POST /v3/auth/tokens`` (password identity matching
  the seed's ``credentials.username/password/domainName``, or token identity) → 201 with
  ``X-Subject-Token``; a project-scoped request gets a catalog (``compute`` →
  ``{base}/v2.1/{projectId}``). Tokens live ``behaviour.tokenTtl`` seconds.

Test-control endpoints (no auth, not counted as API calls):

- ``GET    /_simulator/state``  ``{"servers": {id: [interfaceAttachment...]}, "calls": {"METHOD template": n},
  "peakCallsPerSecond": n, "freePorts": [port ids not attached]}``
- ``PUT    /_simulator/behaviour``  merge a JSON object into the behaviour (unknown keys → 400)
- ``POST   /_simulator/servers``  ``{"id", "maxNics"}`` → 201 (409 if it exists)
- ``DELETE /_simulator/servers/{id}``  the server is deleted: ports Nova created die with it, ports
  attached by port_id become free (204)
- ``POST   /_simulator/networks``  ``{"id", "subnetId", "cidr"}`` → 201 (409 if it exists), a new network
- ``POST   /_simulator/ports``  ``{"netId", "id"?, "ipAddress"?, "macAddr"?}`` → 201, a free port
- ``DELETE /_simulator/servers/{sid}/ports/{pid}``  out-of-band detach, immediate (drift) (204)
- ``POST   /_simulator/reset``  reset call counters, peak, throttle window, busyFirst counters (204)

Seed and behaviour keys: see :mod:`ecs_nic_operator.simulator.seed` (``DEFAULT_BEHAVIOUR``).
"""

from .seed import DEFAULT_BEHAVIOUR, SeedError, default_seed, load_seed, seed_to_yaml
from .server import Simulator, ThreadedSimulator, main, run_in_thread

__all__ = [
    "DEFAULT_BEHAVIOUR",
    "SeedError",
    "Simulator",
    "ThreadedSimulator",
    "default_seed",
    "load_seed",
    "main",
    "run_in_thread",
    "seed_to_yaml",
]
