"""Simulator of the Huawei Cloud ECS / OpenStack Nova NIC API (``os-interface``), built on aiohttp.

Cloud API (authenticated with ``X-Auth-Token`` or AK/SK ``SDK-HMAC-SHA256``; every response carries
``X-Request-Id: req-<uuid>``):

- ``POST   /v2.1/{project_id}/servers/{server_id}/os-interface``            attach (200)
- ``GET    /v2.1/{project_id}/servers/{server_id}/os-interface``            list
- ``GET    /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}``  show (404 when not attached)
- ``DELETE /v2.1/{project_id}/servers/{server_id}/os-interface/{port_id}``  detach (202, asynchronous)
- ``GET    /v1/{project_id}/cloudservers/{server_id}/os-interface``  (huawei dialect) Huawei's v1 list: each NIC
  with ``delete_on_termination``, ``driver_mode``, ``pci_address``, ``multiqueue_num``, ``min_rate``, plus
  ``attachableQuantity.free_nic``
- ``GET    /v1/{project_id}/cloudservers/{server_id}/os-interface_extension``  (huawei dialect) the attachable
  count (``attachableQuantity``: ``free_nic``, ``free_scsi``, ``free_blk``, ``free_disk``, ``free_efi_nic``) and
  the NICs (with ``preserve_on_delete``)
- ``POST   /v1/{project_id}/cloudservers/{server_id}/nics``  (huawei dialect) Huawei's v1 batch add, answers a
  ``job_id``; ``POST .../nics/delete`` detaches and deletes the ports; ``GET /v1/{project_id}/jobs/{job_id}`` the
  job (INIT, RUNNING, SUCCESS or FAIL, ``entities.sub_jobs[].entities.nic_id``): see :mod:`.jobs`
- ``GET/PUT /v2.0/ports/{port_id}``  (both dialects) Neutron's port: security groups, allowed address pairs,
  port security (see :mod:`.neutron`)
- ``GET /``, ``GET /v2.1[/]``: Nova version documents (no auth), for openstacksdk's discovery.

Dialects (``--dialect`` or the seed's ``behaviour.dialect``; ``huawei`` by default): ``huawei`` refuses as Huawei's
ECS does, ``{"error": {"code": "Ecs.xxxx", "message"}}`` mostly with HTTP 400 (server missing 404 Ecs.0614, subnet
missing Ecs.0038, port attached elsewhere Ecs.0919, IP in use Ecs.0010, IP outside the subnet Ecs.0039, subnet
full Ecs.0012, NIC quota Ecs.0050, busy Ecs.0100 or 501 Ecs.0603, locked Ecs.0605), and its gateway answers
``{"error_code", "error_msg"}`` (401 APIGW.0301, 429 APIGW.0308, 404 APIGW.0101 for any path or method it does
not route, 504 APIGW.0202 for a lost reply); ``nova`` answers like upstream Nova (``{"<kind>": {"code",
"message"}}``, 409 conflicts, 403 quota) and has no v1 API. Server states (seed ``servers[].state`` or the
control endpoint): ``ACTIVE``; ``busy`` (in a task state for ``taskTime`` s at the start and after each accepted
attach/detach); ``locked``; ``stopped`` (stuck detaches finish). Temporary AK/SK: with
``credentials.securityToken`` set, signed requests must carry it as a signed ``X-Security-Token``.
- Fake Keystone: ``GET /v3[/]`` (version document), ``POST /v3/auth/tokens`` (password identity matching
  the seed's ``credentials.username/password/domainName``, or token identity) → 201 with
  ``X-Subject-Token``; a project-scoped request gets a catalog (``compute`` →
  ``{base}/v2.1/{projectId}``). Tokens live ``behaviour.tokenTtl`` seconds.

Test-control endpoints (no auth, not counted as API calls):

- ``GET    /_simulator/state``  ``{"dialect", "servers": {id: [interfaceAttachment...]}, "serverStates": {id: state},
  "stuck": {"detach": [port ids], "attach": [port ids]}, "calls": {"METHOD template": n}, "peakCallsPerSecond": n,
  "callsPerSecond": [calls in each second since the counters were reset],
  "refusals": {code or Nova kind or "lostReply": n}, "freePorts": [port ids not attached]}``
- ``PUT    /_simulator/behaviour``  merge a JSON object into the behaviour (unknown keys → 400)
- ``PUT    /_simulator/credentials``  merge into what the cloud accepts (rotation; unknown keys → 400) (204)
- ``POST   /_simulator/servers``  ``{"id", "maxNics", "state"?}`` → 201 (409 if it exists)
- ``PUT    /_simulator/servers/{id}``  ``{"state": "ACTIVE|busy|locked|stopped"}`` → 200 (any change brings
  stuck-DOWN ports up; ``stopped`` finishes stuck detaches)
- ``DELETE /_simulator/servers/{id}``  the server is deleted: ports Nova created die with it, ports
  attached by port_id become free (204)
- ``POST   /_simulator/networks``  ``{"id", "subnetId", "cidr"}`` → 201 (409 if it exists), a new network
- ``POST   /_simulator/ports``  ``{"netId", "id"?, "ipAddress"?, "macAddr"?}`` → 201, a free port
- ``DELETE /_simulator/servers/{sid}/ports/{pid}``  out-of-band detach, immediate (drift) (204)
- ``GET    /_simulator/ports/{pid}``  the port as Neutron shows it; ``PUT`` changes its properties out of band
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
