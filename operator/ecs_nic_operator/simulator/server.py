"""aiohttp application of the ECS / Nova os-interface simulator (see the package docstring)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from . import neutron, signing
from .jobs import Jobs
from .seed import SeedError, default_seed, load_seed, normalise_seed, seed_to_yaml
from .world import NovaError, World, not_found

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_MICROVERSION = (2, 79)
NOVA_VERSION = {
    "id": "v2.1",
    "status": "CURRENT",
    "version": "2.79",
    "min_version": "2.1",
    "updated": "2013-07-23T11:33:21Z",
}
CONTROL_PREFIX = "/_simulator"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


def _nova_error(err: NovaError) -> web.Response:
    return _json(err.status, {err.kind: {"code": err.status, "message": err.message}})


def _gateway(status: int, code: str, message: str) -> web.Response:
    """The API gateway's own answers (Huawei: ``{"error_code", "error_msg"}``)."""
    return _json(status, {"error_code": code, "error_msg": message})


API_NOT_FOUND = ("APIGW.0101", "The API does not exist or has not been published in the environment")
LOST_REPLY = ("APIGW.0202", "Backend timeout")


def _isotime(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _json_body(request: web.Request) -> Any:
    """The request's JSON, or None when it has none or is not JSON: each handler refuses that in its own words."""
    try:
        return await request.json()
    except ValueError:
        return None


class Simulator:
    """One simulated cloud. ``Simulator(seed)``; serve it with :meth:`start` or mount :meth:`app`."""

    def __init__(self, seed: dict[str, Any] | None = None) -> None:
        self.seed = normalise_seed(seed if seed is not None else default_seed())
        self.project_id: str = str(self.seed["projectId"])
        self.credentials: dict[str, Any] = self.seed["credentials"]
        self.behaviour: dict[str, Any] = dict(self.seed["behaviour"])
        self._lock = threading.Lock()  # state() may be called from another thread
        self._reseed()
        try:
            self.world = World(self.seed, time.monotonic, self.behaviour, self._id_rng, self.rng)
        except NovaError as exc:  # e.g. a seeded port's ipAddress outside its network
            raise SeedError(f"seed: {exc.message}") from exc
        self.jobs = Jobs(self.world)
        self.tokens: dict[str, float] = {}  # issued token -> expiry (wall clock)
        self._reset_counters()
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    # -- bookkeeping -----------------------------------------------------------------------------
    def _reseed(self) -> None:
        rs = self.behaviour.get("randomSeed")
        self.rng = random.Random(rs)
        self._id_rng = None if rs is None else random.Random(f"ids-{rs}")
        if hasattr(self, "world"):
            self.world.id_rng = self._id_rng
            self.world.rng = self.rng

    def _reset_counters(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.calls_by_server: collections.Counter[str] = collections.Counter()  # API calls naming a server
        self.refusals: collections.Counter[str] = collections.Counter()  # answers by code (and lost replies)
        self.peak = 0
        self._since = time.monotonic()
        self.per_second: list[int] = []  # API calls in each second since the counters were reset
        self._window: collections.deque[float] = collections.deque()  # all API calls, last second
        self._admitted: collections.deque[float] = collections.deque()  # calls let through by qps
        self._fault_toggle = 0
        if hasattr(self, "world"):
            for server in self.world.servers.values():
                server.mutating_calls = 0

    def _count(self, key: str, now: float) -> None:
        self.calls[key] += 1
        w = self._window
        w.append(now)
        while w[0] <= now - 1.0:
            w.popleft()
        self.peak = max(self.peak, len(w))
        second = int(now - self._since)
        if second < 3600:  # a timeline for a benchmark's run, not an unbounded log
            self.per_second.extend([0] * (second + 1 - len(self.per_second)))
            self.per_second[second] += 1

    def _throttled(self, now: float) -> bool:
        qps = float(self.behaviour.get("qps") or 0)
        if qps <= 0:
            return False
        a = self._admitted
        while a and a[0] <= now - 1.0:
            a.popleft()
        if len(a) >= qps:
            return True
        a.append(now)
        return False

    @property
    def huawei(self) -> bool:
        return self.behaviour.get("dialect") == "huawei"

    def _error(self, err: NovaError) -> web.Response:
        """A refusal in this simulator's dialect."""
        if self.huawei and err.ecs is not None:
            status, code, message = err.ecs
            self.refusals[code] += 1
            return _json(status, {"error": {"code": code, "message": message}})
        self.refusals[err.kind] += 1
        return _nova_error(err)

    def _iam_error(self, detail: str) -> web.Response:
        self.refusals["APIGW.0301"] += 1
        message = f"Incorrect IAM authentication information: {detail}"
        if self.huawei:
            return _gateway(401, "APIGW.0301", message)
        return _json(401, {"error": {"code": "APIGW.0301", "message": message}})

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "dialect": self.behaviour.get("dialect"),
                "servers": self.world.snapshot(),
                "serverStates": {sid: srv.state for sid, srv in self.world.servers.items()},
                "stuck": self.world.stuck(),
                "calls": dict(self.calls),
                "callsByServer": dict(self.calls_by_server),
                "peakCallsPerSecond": self.peak,
                "callsPerSecond": list(self.per_second),
                "refusals": dict(self.refusals),
                "freePorts": sorted(pid for pid, p in self.world.ports.items() if p.server_id is None),
                "jobs": self._job_counts(),
            }

    def _job_counts(self) -> dict[str, dict[str, int]]:
        """v1 jobs by type and status, e.g. {"batchAddNics": {"SUCCESS": 3, "RUNNING": 1}}."""
        now = self.world.clock()
        out: dict[str, collections.Counter[str]] = {}
        for job in self.jobs.jobs.values():
            out.setdefault(job.type, collections.Counter())[job.status(now)] += 1
        return {kind: dict(counts) for kind, counts in out.items()}

    # -- app -------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        r = app.router
        iface = "/v2.1/{project_id}/servers/{server_id}/os-interface"
        r.add_get("/", self._versions)
        r.add_get("/v2.1", self._version)
        r.add_get("/v2.1/", self._version)
        r.add_get("/v3", self._identity_version)
        r.add_get("/v3/", self._identity_version)
        r.add_post("/v3/auth/tokens", self._issue_token)
        r.add_get("/v2.1/{project_id}/servers/{server_id}", self._show_server)
        r.add_get(iface, self._list)
        r.add_post(iface, self._attach)
        r.add_get(iface + "/{port_id}", self._show)
        r.add_delete(iface + "/{port_id}", self._detach)
        v1 = "/v1/{project_id}/cloudservers/{server_id}"
        r.add_get(v1 + "/os-interface", self._v1_list)
        r.add_get(v1 + "/os-interface_extension", self._v1_extension)
        r.add_post(v1 + "/nics", self._v1_add_nics)
        r.add_post(v1 + "/nics/delete", self._v1_delete_nics)
        r.add_get("/v1/{project_id}/jobs/{job_id}", self._v1_job)
        r.add_get("/v2.0/ports/{port_id}", self._neutron_show_port)
        r.add_put("/v2.0/ports/{port_id}", self._neutron_update_port)
        r.add_get(CONTROL_PREFIX + "/state", self._ctl_state)
        r.add_put(CONTROL_PREFIX + "/behaviour", self._ctl_behaviour)
        r.add_put(CONTROL_PREFIX + "/credentials", self._ctl_credentials)
        r.add_post(CONTROL_PREFIX + "/servers", self._ctl_add_server)
        r.add_delete(CONTROL_PREFIX + "/servers/{server_id}", self._ctl_delete_server)
        r.add_put(CONTROL_PREFIX + "/servers/{server_id}", self._ctl_server_state)
        r.add_post(CONTROL_PREFIX + "/networks", self._ctl_add_network)
        r.add_post(CONTROL_PREFIX + "/ports", self._ctl_add_port)
        r.add_get(CONTROL_PREFIX + "/ports/{port_id}", self._ctl_show_port)
        r.add_put(CONTROL_PREFIX + "/ports/{port_id}", self._ctl_set_port)
        r.add_delete(CONTROL_PREFIX + "/servers/{server_id}/ports/{port_id}", self._ctl_force_detach)
        r.add_post(CONTROL_PREFIX + "/reset", self._ctl_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addr = self._runner.addresses[0]
        shown = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        self.url = f"http://{shown}:{addr[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middleware: request id, counting, faults, auth -----------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = f"req-{uuid.uuid4()}"
        try:
            if request.path.startswith(CONTROL_PREFIX):
                resp = await handler(request)
            else:
                resp = await self._api_call(request, handler)
        except web.HTTPException as exc:  # unknown route, wrong method, bad control body
            if self.huawei and exc.status in (404, 405) and not request.path.startswith(CONTROL_PREFIX):
                # Huawei's gateway answers any path or method it does not route with its own 404.
                resp = _gateway(404, *API_NOT_FOUND)
                resp.headers["X-Request-Id"] = rid
                return resp
            exc.headers["X-Request-Id"] = rid
            raise
        resp.headers["X-Request-Id"] = rid
        return resp

    async def _api_call(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        b = self.behaviour
        now = time.monotonic()
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else "*"
        mutating = request.method in ("POST", "DELETE", "PUT")
        with self._lock:
            self._count(f"{request.method} {template}", now)
            if "server_id" in request.match_info:
                self.calls_by_server[request.match_info["server_id"]] += 1
            throttled = self._throttled(now)
            slow = self.rng.random() < float(b["slowRate"] or 0)
            fail = self.rng.random() < float(b["failRate"] or 0)
            drop = self.rng.random() < float(b["dropRate"] or 0)
            lost = mutating and self.rng.random() < float(b["lostReplyRate"] or 0)
        if throttled:
            headers = {} if b.get("retryAfter") is None else {"Retry-After": str(b["retryAfter"])}
            return _json(
                429,
                {"error_code": "APIGW.0308", "error_msg": "The throttling threshold has been reached"},
                headers,
            )
        v1 = template.startswith("/v1/{project_id}")
        network = template.startswith("/v2.0/")
        if template.startswith("/v2.1/{project_id}") or network or (v1 and self.huawei):  # nova: no v1 API
            denied = await self._authenticate(request)
            if denied is not None:
                return denied
        delay = float(b["latency"] or 0) + (float(b["slowDelay"] or 0) if slow else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fail:
            with self._lock:
                self._fault_toggle ^= 1
                nova_shape = self._fault_toggle == 1
            if nova_shape and self.huawei:
                return _json(400, {"error": {"code": "Ecs.1000", "message": "Internal error in the compute service."}})
            if nova_shape:
                msg = "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/"
                return _json(500, {"computeFault": {"code": 500, "message": msg}})
            return _gateway(503, "APIGW.0203", "Backend unavailable")
        after_commit = mutating and bool(b["dropAfterCommit"])
        if drop and not after_commit:
            return self._drop(request)
        resp = await handler(request)
        reply_delay = float(b.get("replyDelay") or 0)
        if mutating and reply_delay > 0:
            await asyncio.sleep(reply_delay)
        if drop:
            return self._drop(request)
        if lost and resp.status < 400:
            # The change is made; the gateway gave up waiting for the backend's answer.
            self.refusals["lostReply"] += 1
            if self.huawei:
                return _gateway(504, *LOST_REPLY)
            return web.Response(status=504, text="<html><body><h1>504 Gateway Time-out</h1></body></html>")
        return resp

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without a response (aiohttp then fails quietly to write this one)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=499)

    async def _authenticate(self, request: web.Request) -> web.Response | None:
        creds = self.credentials
        auth = request.headers.get("Authorization", "")
        token = request.headers.get("X-Auth-Token")
        if auth.startswith(signing.ALGORITHM):
            if not creds.get("accessKey") or not creds.get("secretKey"):
                return self._iam_error("AK/SK authentication is not enabled")
            body = await request.read()
            query = [(k, v) for k, v in request.query.items()]
            try:
                signing.verify(
                    method=request.method,
                    raw_path=request.raw_path.split("?", 1)[0],
                    query=query,
                    headers=request.headers,
                    body=body,
                    access_key=creds["accessKey"],
                    secret_key=creds["secretKey"],
                    max_skew=float(self.behaviour["clockSkew"]),
                )
            except signing.SignatureError as exc:
                return self._iam_error(str(exc))
            header_project = request.headers.get("X-Project-Id")
            if header_project is not None and header_project != self.project_id:
                return self._iam_error("the project id in X-Project-Id is not the one of this access key")
            wanted_token = creds.get("securityToken")
            if wanted_token:
                # Temporary AK/SK are valid only with their security token, and only if it was signed.
                signed = signing.parse_authorization(auth).signed_headers
                presented = request.headers.get("X-Security-Token")
                if presented != wanted_token or "x-security-token" not in signed:
                    return self._iam_error("temporary AK/SK without a valid, signed X-Security-Token")
        elif token:
            if not self._token_valid(token):
                return self._iam_error("token expired or invalid")
        else:
            return self._iam_error("no X-Auth-Token or AK/SK Authorization header")
        url_project = request.match_info.get("project_id")
        if "project_id" in request.match_info and url_project != self.project_id:  # Neutron's paths name none
            return _nova_error(
                NovaError(
                    400,
                    "badRequest",
                    f"Malformed request URL: URL's project_id '{url_project}' doesn't match "
                    f"Context's project_id '{self.project_id}'",
                )
            )
        return None

    def _token_valid(self, token: str) -> bool:
        seed_token = self.credentials.get("token")
        if seed_token and token == seed_token:
            return True
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.time()

    # -- microversions ---------------------------------------------------------------------------
    @staticmethod
    def _microversion(request: web.Request) -> tuple[int, int] | web.Response:
        raw = request.headers.get("OpenStack-API-Version", "")
        value = ""
        for part in raw.split(","):
            svc, _, ver = part.strip().partition(" ")
            if svc.lower() == "compute":
                value = ver.strip()
        value = value or request.headers.get("X-OpenStack-Nova-API-Version", "").strip() or "2.1"
        if value == "latest":
            return MAX_MICROVERSION
        try:
            major, minor = (int(x) for x in value.split("."))
        except ValueError:
            return _nova_error(NovaError(400, "badRequest", f"Invalid API version request: {value}"))
        if (major, minor) > MAX_MICROVERSION or (major, minor) < (2, 1):
            return _nova_error(
                NovaError(
                    406,
                    "computeFault",
                    f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.79.",
                )
            )
        return (major, minor)

    async def _nova(self, request: web.Request, op: Callable[[tuple[int, int]], web.Response]) -> web.Response:
        mv = self._microversion(request)
        if isinstance(mv, web.Response):
            return mv
        try:
            with self._lock:
                resp = op(mv)
        except NovaError as err:
            resp = self._error(err)
        ver = f"{mv[0]}.{mv[1]}"
        resp.headers["OpenStack-API-Version"] = f"compute {ver}"
        resp.headers["X-OpenStack-Nova-API-Version"] = ver
        resp.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return resp

    # -- Nova handlers ---------------------------------------------------------------------------
    async def _list(self, request: web.Request) -> web.Response:
        sid = request.match_info["server_id"]

        def op(mv: tuple[int, int]) -> web.Response:
            ports = self.world.list_interfaces(sid)
            tag = mv >= (2, 70)
            return _json(200, {"interfaceAttachments": [self.world.view(p, tag) for p in ports]})

        return await self._nova(request, op)

    async def _show_server(self, request: web.Request) -> web.Response:
        sid = request.match_info["server_id"]

        def op(mv: tuple[int, int]) -> web.Response:
            self.world.server_for_call(sid)
            return _json(200, {"server": {"id": sid, "name": f"server-{sid[:8]}", "status": "ACTIVE"}})

        return await self._nova(request, op)

    async def _show(self, request: web.Request) -> web.Response:
        sid, pid = request.match_info["server_id"], request.match_info["port_id"]

        def op(mv: tuple[int, int]) -> web.Response:
            port = self.world.get_interface(sid, pid)
            return _json(200, {"interfaceAttachment": self.world.view(port, mv >= (2, 70))})

        return await self._nova(request, op)

    async def _attach(self, request: web.Request) -> web.Response:
        sid = request.match_info["server_id"]
        body = await _json_body(request)

        def op(mv: tuple[int, int]) -> web.Response:
            if body is None:
                raise NovaError(400, "badRequest", "Malformed request body")
            port = self.world.attach(sid, body)
            return _json(200, {"interfaceAttachment": self.world.view(port, mv >= (2, 70))})

        return await self._nova(request, op)

    async def _detach(self, request: web.Request) -> web.Response:
        sid, pid = request.match_info["server_id"], request.match_info["port_id"]

        def op(mv: tuple[int, int]) -> web.Response:
            self.world.detach(sid, pid)
            return web.Response(status=202)

        return await self._nova(request, op)

    # -- Huawei's v1 read calls (huawei dialect only) ------------------------------------------------
    async def _v1(self, request: web.Request, extension: bool) -> web.Response:
        if not self.huawei:
            raise web.HTTPNotFound()  # upstream OpenStack has no /v1/{project}/cloudservers API
        sid = request.match_info["server_id"]
        try:
            with self._lock:
                server = self.world.server_for_call(sid)
                nics = [self.world.v1_view(p, extension) for p in server.ports.values()]
                free = self.world.free_nics(server)
        except NovaError as err:
            return self._error(err)
        if not extension:
            return _json(200, {"interfaceAttachments": nics, "attachableQuantity": {"free_nic": free}})
        quantity = {"free_efi_nic": 0, "free_scsi": 59, "free_blk": 23, "free_disk": 59, "free_nic": free}
        return _json(200, {"attachableQuantity": quantity, "interfaceAttachments": nics})

    async def _v1_list(self, request: web.Request) -> web.Response:
        return await self._v1(request, extension=False)

    async def _v1_extension(self, request: web.Request) -> web.Response:
        return await self._v1(request, extension=True)

    # -- Huawei's v1 NIC writes and jobs (huawei dialect only; simulator/jobs.py) -------------------
    async def _v1_write(self, request: web.Request, op: Callable[[Any], dict[str, Any]]) -> web.Response:
        if not self.huawei:
            raise web.HTTPNotFound()
        body = await _json_body(request)
        try:
            with self._lock:
                return _json(200, op(body))
        except NovaError as err:
            return self._error(err)

    async def _v1_add_nics(self, request: web.Request) -> web.Response:
        sid = request.match_info["server_id"]
        return await self._v1_write(request, lambda body: {"job_id": self.jobs.add_nics(sid, body).id})

    async def _v1_delete_nics(self, request: web.Request) -> web.Response:
        sid = request.match_info["server_id"]
        return await self._v1_write(request, lambda body: {"job_id": self.jobs.delete_nics(sid, body).id})

    async def _v1_job(self, request: web.Request) -> web.Response:
        if not self.huawei:
            raise web.HTTPNotFound()
        try:
            with self._lock:
                return _json(200, self.jobs.view(request.match_info["job_id"]))
        except NovaError as err:
            return self._error(err)

    # -- Neutron's ports (both dialects: every OpenStack has a network service; simulator/neutron.py) --
    def _port_doc(self, port: Any) -> dict[str, Any]:
        wall = time.time() - (self.world.clock() - port.updated_at) if port.updated_at else time.time()
        return {"port": neutron.view(self.world, port, self.project_id, wall)}

    async def _neutron_show_port(self, request: web.Request) -> web.Response:
        try:
            with self._lock:
                return _json(200, self._port_doc(neutron.port_of(self.world, request.match_info["port_id"])))
        except neutron.NeutronError as err:
            self.refusals[err.type] += 1
            return _json(err.status, err.body())

    async def _neutron_update_port(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            with self._lock:
                return _json(200, self._port_doc(neutron.update(self.world, request.match_info["port_id"], body)))
        except neutron.NeutronError as err:
            self.refusals[err.type] += 1
            return _json(err.status, err.body())

    # -- version documents -----------------------------------------------------------------------
    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def _versions(self, request: web.Request) -> web.Response:
        base = self._base(request)
        v2 = {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        }
        v21 = {**NOVA_VERSION, "links": [{"rel": "self", "href": f"{base}/v2.1/"}]}
        return _json(200, {"versions": [v2, v21]})

    async def _version(self, request: web.Request) -> web.Response:
        base = self._base(request)
        doc = {
            **NOVA_VERSION,
            "links": [
                {"rel": "self", "href": f"{base}/v2.1/"},
                {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
            ],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
        }
        return _json(200, {"version": doc})

    # -- fake Keystone ---------------------------------------------------------------------------
    async def _identity_version(self, request: web.Request) -> web.Response:
        doc = {
            "id": "v3.0",
            "status": "stable",
            "updated": "2013-03-06T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self._base(request)}/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }
        return _json(200, {"version": doc})

    async def _issue_token(self, request: web.Request) -> web.Response:
        def unauthorized(msg: str) -> web.Response:
            return _json(401, {"error": {"code": 401, "title": "Unauthorized", "message": msg}})

        try:
            body = await request.json()
            identity = body["auth"]["identity"]
            methods = identity["methods"]
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": {"code": 400, "title": "Bad Request", "message": "Malformed body"}})
        creds = self.credentials
        user_name = creds.get("username") or "sim-user"
        domain_name = creds.get("domainName") or "sim-domain"
        if "password" in methods:
            try:
                user = identity["password"]["user"]
                dom = user.get("domain") or {}
                ok = (
                    creds.get("password") is not None
                    and user.get("name") == creds.get("username")
                    and user.get("password") == creds.get("password")
                    and (dom.get("name") == domain_name or dom.get("id") == self._domain_id())
                )
            except (KeyError, TypeError, AttributeError):
                ok = False
            if not ok:
                return unauthorized("The request you have made requires authentication.")
        elif "token" in methods:
            try:
                presented = str(identity["token"]["id"])
            except (KeyError, TypeError):
                presented = ""
            if not self._token_valid(presented):
                return unauthorized("The request you have made requires authentication.")
        else:
            return unauthorized("Unsupported authentication method.")
        ttl = float(self.behaviour["tokenTtl"])
        token = "sim-iam-" + uuid.uuid4().hex
        now = time.time()
        with self._lock:
            if len(self.tokens) > 1000:
                self.tokens = {t: e for t, e in self.tokens.items() if e > now}
            self.tokens[token] = now + ttl
        base = self._base(request)
        region = str(self.seed.get("region") or "RegionOne")
        dom = {"id": self._domain_id(), "name": domain_name}
        endpoint = {"interface": "public", "region": region, "region_id": region, "id": uuid.uuid4().hex}
        doc: dict[str, Any] = {
            "methods": [m for m in methods if m in ("password", "token")],
            "expires_at": _isotime(now + ttl),
            "issued_at": _isotime(now),
            "user": {"id": uuid.uuid5(uuid.NAMESPACE_URL, user_name).hex, "name": user_name, "domain": dom},
            "roles": [{"id": uuid.uuid5(uuid.NAMESPACE_URL, "member").hex, "name": "member"}],
        }
        scope = body["auth"].get("scope")
        if isinstance(scope, dict) and "project" in scope:
            doc["project"] = {"id": self.project_id, "name": region, "domain": dom}
            doc["catalog"] = [
                {
                    "id": uuid.uuid5(uuid.NAMESPACE_URL, "nova").hex,
                    "type": "compute",
                    "name": "nova",
                    "endpoints": [{**endpoint, "url": f"{base}/v2.1/{self.project_id}"}],
                },
                {
                    "id": uuid.uuid5(uuid.NAMESPACE_URL, "keystone").hex,
                    "type": "identity",
                    "name": "keystone",
                    "endpoints": [{**endpoint, "url": f"{base}/v3"}],
                },
            ]
        return _json(201, {"token": doc}, {"X-Subject-Token": token})

    def _domain_id(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_URL, str(self.credentials.get("domainName"))).hex

    # -- control endpoints -----------------------------------------------------------------------
    async def _ctl_state(self, request: web.Request) -> web.Response:
        return _json(200, self.state())

    async def _ctl_body(self, request: web.Request) -> dict[str, Any]:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="a JSON object is required")
        return body

    async def _ctl_behaviour(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        try:
            merged = normalise_seed({"behaviour": {**self.behaviour, **body}})["behaviour"]
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        with self._lock:
            reseed = merged.get("randomSeed") != self.behaviour.get("randomSeed")
            self.behaviour.update(merged)  # the world holds the same dict
            if reseed:
                self._reseed()
        return _json(200, {"behaviour": self.behaviour})

    async def _ctl_credentials(self, request: web.Request) -> web.Response:
        """Rotate what the cloud accepts (e.g. temporary AK/SK expiring): merge, unknown keys refused."""
        body = await self._ctl_body(request)
        unknown = set(body) - set(self.credentials)
        if unknown:
            return _json(400, {"error": f"unknown credential keys {sorted(unknown)}"})
        with self._lock:
            self.credentials.update({k: (None if v is None else str(v)) for k, v in body.items()})
        return web.Response(status=204)

    async def _ctl_add_server(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        sid = str(body.get("id") or uuid.uuid4())
        state = str(body.get("state") or "ACTIVE")
        try:
            with self._lock:
                self.world.add_server(sid, int(body.get("maxNics", 12)), state)
        except NovaError as err:
            return _nova_error(err)
        return _json(201, {"id": sid, "maxNics": int(body.get("maxNics", 12)), "state": state})

    async def _ctl_server_state(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        sid = request.match_info["server_id"]
        try:
            with self._lock:
                self.world.set_state(sid, str(body.get("state")))
        except NovaError as err:
            return _nova_error(err)
        return _json(200, {"id": sid, "state": str(body.get("state"))})

    async def _ctl_delete_server(self, request: web.Request) -> web.Response:
        try:
            with self._lock:
                self.world.delete_server(request.match_info["server_id"])
        except NovaError as err:
            return _nova_error(err)
        return web.Response(status=204)

    async def _ctl_add_network(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        net_id = str(body.get("id") or uuid.uuid4())
        subnet_id = str(body.get("subnetId") or uuid.uuid4())
        try:
            with self._lock:
                self.world.add_network(net_id, subnet_id, str(body.get("cidr") or ""))
        except NovaError as err:
            return _nova_error(err)
        return _json(201, {"id": net_id, "subnetId": subnet_id, "cidr": str(body.get("cidr"))})

    def _known_server(self, server_id: Any) -> str | None:
        if server_id is None:
            return None
        if str(server_id) not in self.world.servers:
            raise not_found(f"Instance {server_id} could not be found.")
        return str(server_id)

    async def _ctl_add_port(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        try:
            with self._lock:
                port = self.world.add_port(
                    str(body.get("netId")),
                    port_id=body.get("id"),
                    ip=body.get("ipAddress"),
                    mac=body.get("macAddr"),
                    # Attached from the start, as another tool would have attached it (not ours to detach).
                    server_id=self._known_server(body.get("serverId")),
                )
                view = self.world.view(port)
        except NovaError as err:
            return _nova_error(err)
        return _json(201, view)

    async def _ctl_show_port(self, request: web.Request) -> web.Response:
        """A port as Neutron shows it, whoever holds it (tests check the properties the operator set)."""
        try:
            with self._lock:
                return _json(200, self._port_doc(neutron.port_of(self.world, request.match_info["port_id"])))
        except neutron.NeutronError as err:
            return _json(err.status, err.body())

    async def _ctl_set_port(self, request: web.Request) -> web.Response:
        """Out-of-band change of a port's properties (drift: someone used the console), Neutron's rules."""
        body = await self._ctl_body(request)
        try:
            with self._lock:
                return _json(200, self._port_doc(neutron.update(self.world, request.match_info["port_id"], body)))
        except neutron.NeutronError as err:
            return _json(err.status, err.body())

    async def _ctl_force_detach(self, request: web.Request) -> web.Response:
        try:
            with self._lock:
                self.world.force_detach(request.match_info["server_id"], request.match_info["port_id"])
        except NovaError as err:
            return _nova_error(err)
        return web.Response(status=204)

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        with self._lock:
            self._reset_counters()
        return web.Response(status=204)


# -- running ---------------------------------------------------------------------------------------
def _as_seed(seed: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    if seed is None:
        return default_seed()
    if isinstance(seed, dict):
        return seed
    return load_seed(seed)


class ThreadedSimulator:
    """Stop callable returned by :func:`run_in_thread`; also exposes ``.simulator`` and ``.url``."""

    def __init__(self, simulator: Simulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.simulator = simulator
        self.url = simulator.url
        self._loop = loop
        self._thread = thread

    def __call__(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.simulator.stop(), self._loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def run_in_thread(
    seed: dict[str, Any] | str | Path | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, ThreadedSimulator]:
    """Serve a simulator from a background thread with its own event loop; returns (url, stop)."""
    sim = Simulator(_as_seed(seed))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start(host, port))
        except BaseException as exc:
            errors.append(exc)
            started.set()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="ecs-nic-simulator", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if errors:
        raise errors[0]
    assert sim.url is not None
    return sim.url, ThreadedSimulator(sim, loop, thread)


def main(host: str, port: int, seed_path: str | None, dialect: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM. Without a seed file, print the generated default seed as YAML.
    ``dialect`` (huawei | nova), when given, overrides the seed's ``behaviour.dialect``."""
    if seed_path is None:
        seed = default_seed()
        print("# no --seed given: serving this default world", flush=True)
        print(seed_to_yaml(seed), flush=True)
    else:
        seed = load_seed(seed_path)
    if dialect is not None:
        seed = normalise_seed({**seed, "behaviour": {**seed["behaviour"], "dialect": dialect}})

    async def serve() -> None:
        sim = Simulator(seed)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        url = await sim.start(host, port)
        print(
            f"ECS NIC simulator listening on {url} (project {sim.project_id}, {sim.behaviour['dialect']} dialect)",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await sim.stop()
            print("ECS NIC simulator stopped", file=sys.stderr, flush=True)

    asyncio.run(serve())
