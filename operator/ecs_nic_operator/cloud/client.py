"""Async client for the Nova-compatible ``os-interface`` NIC API that Huawei ECS serves.

The client maps every failure to a ``CloudError`` subclass and otherwise stays dumb: no
retries (the reconciler owns the retry policy, so a storm of failures cannot multiply
calls behind its back), except the one resend ``KeystonePasswordAuth`` does after a 401.
"""

from __future__ import annotations

import builtins
import contextvars
import inspect
import ipaddress
import logging
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import quote

import httpx

from ecs_nic_operator import __version__
from ecs_nic_operator.cloud.errors import (
    ApiNotFound,
    CloudError,
    CloudUnavailable,
    NotFound,
    error_from_response,
    request_id_of,
)
from ecs_nic_operator.cloud.models import InterfaceAttachment, Job
from ecs_nic_operator.cloud.observe import CallObserver, NoObserver
from ecs_nic_operator.cloud.pools import PooledTransport
from ecs_nic_operator.cloud.ratelimit import TokenBucket
from ecs_nic_operator.cloud.transport import ProxyRouter, ssl_context
from ecs_nic_operator.cloud.urls import require_secure_url
from ecs_nic_operator.fence import FENCE

log = logging.getLogger("ecs_nic_operator.cloud")

# IDs become path segments; anything outside this set (slashes, dots-only, spaces) could
# address a different resource than the one the spec names.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,254}")

# Rate-limit waits of the current call, so its latency can be reported without them.
_waited: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("_waited", default=None)


class _RateLimitedTransport(httpx.AsyncBaseTransport):
    """Takes a limiter token for every request to the ECS endpoint, including resends made
    inside an auth flow, which a limiter in front of ``AsyncClient.request`` would miss.

    ``at_wire``: the token is taken as the request's headers are written (httpcore's ``trace`` extension
    awaits our callback right before that write), not when the request enters the transport. Between the
    two a request may wait for a free connection, a TCP handshake, or a busy event loop: measured in the
    benchmark at L = 2 s, a median 0.34 s and up to 9.8 s, so requests granted over several seconds reached
    the cloud within one (89 calls/s against a ceiling of 50 with every grant spaced 1/qps). Without
    ``at_wire`` (a transport given by the caller, which may not be httpcore) the token is taken up front.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        limiter: TokenBucket,
        origin: httpx.URL,
        observer: CallObserver,
        *,
        at_wire: bool,
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._limiter = limiter
        self._origin = (origin.scheme, origin.host, origin.port)
        self._at_wire = at_wire
        self._fallback_logged = False

    async def _take(self) -> int:
        waited = await self._limiter.acquire()
        self._observer.waited(waited)
        acc = _waited.get()
        if acc is not None:
            acc.append(waited)
        # Timed from the token, so the estimate is the cloud's latency, not our own queue's.
        return self._limiter.latency.sent()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (request.url.scheme, request.url.host, request.url.port) != self._origin:
            return await self._inner.handle_async_request(request)
        calls: list[int] = []
        if not self._at_wire:
            calls.append(await self._take())
        else:
            outer = request.extensions.get("trace")

            async def at_headers(event: str, info: dict[str, Any]) -> None:
                if outer is not None:
                    result = outer(event, info)
                    if inspect.isawaitable(result):
                        await result
                # A proxy tunnel's CONNECT goes to the proxy, not the cloud; the request inside it counts.
                if event.endswith(".send_request_headers.started") and not calls:
                    sent = info.get("request")
                    if getattr(sent, "method", None) != b"CONNECT":
                        calls.append(await self._take())
                        # The token wait may outlast the lease: the fence is asked again right at the wire.
                        FENCE.check(f"cloud {request.method} {request.url.path}")

            request.extensions = {**request.extensions, "trace": at_headers}
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            if calls:
                self._limiter.latency.answered(calls[0])
        if not calls:
            # An answer with no token taken: the transport below did not call the trace hook (not httpcore,
            # or one that renamed its events). Count the call late rather than not at all.
            if not self._fallback_logged:
                self._fallback_logged = True
                log.error("the HTTP transport did not report sending headers; rate-limit tokens are taken late")
            self._observer.waited(await self._limiter.acquire())
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _FencedTransport(httpx.AsyncBaseTransport):
    """The last step before the wire (after the rate-limit wait): a replica without the leader lease
    sends nothing, Keystone token requests included (fence.py)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        FENCE.check(f"cloud {request.method} {request.url.path}")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{kind} {value!r} is not a valid ID")
    return value


def _check_ip(fixed_ip: str) -> str:
    try:
        ipaddress.ip_address(fixed_ip)
    except ValueError:
        raise ValueError(f"fixed_ip {fixed_ip!r} is not an IP address") from None
    return fixed_ip


class ClientOptions(TypedDict, total=False):
    """ApiClient's transport keywords, which every client of a cloud passes through unchanged."""

    limiter: TokenBucket | None
    timeout: float
    transport: httpx.AsyncBaseTransport | None
    max_connections: int
    observer: CallObserver | None
    ca_bundle: str | None
    verify: ssl.SSLContext | None


class ApiClient:
    """What every client of one cloud shares: the transport (proxies, TLS, the EcsCloud's rate limit, the
    leader fence), the auth flow, and one call with its observation and error mapping."""

    def __init__(
        self,
        endpoint: str,
        auth: httpx.Auth,
        *,
        what: str = "ECS endpoint",
        limiter: TokenBucket | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        observer: CallObserver | None = None,
        ca_bundle: str | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        """``ca_bundle``: base64 PEM CAs trusted besides the system ones (EcsCloud ``spec.caBundle``); raises
        ``CaBundleError`` if unusable. ``verify``: a TLS context built already (then ``ca_bundle`` is not
        read), so that a caller making clients often loads the CAs once. Proxies come from
        ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``."""
        self._observer: CallObserver = observer or NoObserver()
        base = require_secure_url(endpoint, what)
        self.endpoint = str(base).rstrip("/")
        self.limiter = limiter
        tls = verify or ssl_context(ca_bundle)
        inner = _FencedTransport(
            transport
            or PooledTransport(
                lambda size: ProxyRouter(
                    verify=tls, limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
                ),
                max_connections,
            )
        )
        self._http = httpx.AsyncClient(
            auth=auth,
            transport=(
                _RateLimitedTransport(inner, limiter, base, self._observer, at_wire=transport is None)
                if limiter is not None
                else inner
            ),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect would carry credentials to wherever it points
            headers={"Accept": "application/json", "User-Agent": f"ecs-nic-operator/{__version__}"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        operation: str,
        method: str,
        url: str,
        server_id: str,
        *,
        ok: frozenset[int],
        json: Mapping[str, Any] | None = None,
        not_found_what: str,
    ) -> httpx.Response:
        waits: list[float] = []
        token = _waited.set(waits)
        began = time.perf_counter()
        status: int | None = None
        request_id: str | None = None
        outcome = "ok"
        try:
            try:
                response = await self._http.request(method, url, json=json)
            except httpx.TimeoutException as exc:
                raise CloudUnavailable(operation, f"timed out ({type(exc).__name__})") from None
            except httpx.RequestError as exc:
                # Includes refused/reset connections and RemoteProtocolError (server hung up).
                detail = str(exc) or type(exc).__name__
                raise CloudUnavailable(operation, f"transport error: {detail}") from None
            status = response.status_code
            request_id = request_id_of(response.headers)
            if status not in ok:
                raise error_from_response(
                    operation, status, response.headers, response.content, not_found_what=not_found_what
                )
            return response
        except CloudError as exc:
            outcome = type(exc).__name__
            status = exc.status if exc.status is not None else status
            request_id = exc.request_id or request_id
            raise
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            _waited.reset(token)
            duration = max(0.0, time.perf_counter() - began - sum(waits))
            self._observer.call(operation, outcome, duration)
            log.debug(
                "cloud call %s server=%s status=%s request_id=%s duration=%.3fs outcome=%s",
                operation,
                server_id,
                status,
                request_id,
                duration,
                outcome,
            )

    @staticmethod
    def _parse(operation: str, response: httpx.Response, key: str) -> Any:
        try:
            doc = response.json()
            return doc[key]
        except (ValueError, KeyError, TypeError):
            raise CloudError(
                operation,
                f"malformed response: expected a JSON object with {key!r}",
                status=response.status_code,
                request_id=request_id_of(response.headers),
            ) from None


class EcsClient(ApiClient):
    def __init__(
        self,
        endpoint: str,
        project_id: str,
        auth: httpx.Auth,
        *,
        api: str = "v2.1",
        **options: Unpack[ClientOptions],
    ) -> None:
        """``api``: "v1" makes :meth:`list` Huawei's v1 list (it adds ``pci_address`` and ``driver_mode``); the
        v1 writes (:meth:`add_nic`, :meth:`delete_nics`) exist either way and are the caller's choice."""
        _check_id("project ID", project_id)
        super().__init__(endpoint, auth, **options)
        self.project_id = project_id
        self.api = api
        self._servers = f"{self.endpoint}/v2.1/{quote(project_id, safe='')}/servers"
        self._v1 = f"{self.endpoint}/v1/{quote(project_id, safe='')}"
        self._cloudservers = f"{self._v1}/cloudservers"

    def __repr__(self) -> str:
        return f"EcsClient(endpoint={self.endpoint!r}, project_id={self.project_id!r})"

    def _url(self, server_id: str, port_id: str | None = None) -> str:
        url = f"{self._servers}/{_check_id('server ID', server_id)}/os-interface"
        if port_id is not None:
            url += f"/{_check_id('port ID', port_id)}"
        return url

    def _attachment(self, operation: str, response: httpx.Response, raw: Any) -> InterfaceAttachment:
        try:
            return InterfaceAttachment.from_api(raw)
        except ValueError as exc:
            raise CloudError(
                operation,
                f"malformed interfaceAttachment: {exc}",
                status=response.status_code,
                request_id=request_id_of(response.headers),
            ) from None

    async def attach(
        self,
        server_id: str,
        *,
        net_id: str | None = None,
        port_id: str | None = None,
        fixed_ip: str | None = None,
    ) -> InterfaceAttachment:
        """Attach a new port on ``net_id`` (optionally with ``fixed_ip``) or the existing ``port_id``."""
        if (net_id is None) == (port_id is None):
            raise ValueError("exactly one of net_id and port_id is required")
        if fixed_ip is not None and net_id is None:
            raise ValueError("fixed_ip can only be given with net_id")
        body: dict[str, Any] = {}
        if net_id is not None:
            body["net_id"] = _check_id("network ID", net_id)
            if fixed_ip is not None:
                body["fixed_ips"] = [{"ip_address": _check_ip(fixed_ip)}]
        if port_id is not None:
            body["port_id"] = _check_id("port ID", port_id)
        op = "attach"
        response = await self._call(
            op,
            "POST",
            self._url(server_id),
            server_id,
            ok=frozenset({200, 201, 202}),
            json={"interfaceAttachment": body},
            # A 404 on attach names whatever was missing; with nothing named, it was the server.
            not_found_what="server",
        )
        return self._attachment(op, response, self._parse(op, response, "interfaceAttachment"))

    async def list(self, server_id: str) -> builtins.list[InterfaceAttachment]:
        if self.api == "v1":
            return await self.list_v1(server_id)
        op = "list"
        response = await self._call(
            op, "GET", self._url(server_id), server_id, ok=frozenset({200}), not_found_what="server"
        )
        raw = self._parse(op, response, "interfaceAttachments")
        if not isinstance(raw, builtins.list):
            raise CloudError(op, "malformed response: interfaceAttachments is not a list", status=200)
        return [self._attachment(op, response, item) for item in raw]

    async def show(self, server_id: str, port_id: str) -> InterfaceAttachment:
        op = "show"
        response = await self._call(
            op,
            "GET",
            self._url(server_id, port_id),
            server_id,
            ok=frozenset({200}),
            not_found_what="interface",
        )
        return self._attachment(op, response, self._parse(op, response, "interfaceAttachment"))

    async def show_server(self, server_id: str) -> dict[str, Any]:
        """Nova's "show server": the server document; NotFound (what="server") only when the 404 names it."""
        op = "show_server"
        response = await self._call(
            op,
            "GET",
            f"{self._servers}/{_check_id('server ID', server_id)}",
            server_id,
            ok=frozenset({200}),
            not_found_what="",
        )
        server = self._parse(op, response, "server")
        if not isinstance(server, dict):
            raise CloudError(op, "malformed response: server is not an object", status=200)
        return server

    async def server_gone(self, server_id: str) -> bool:
        """True only when the cloud says this server does not exist: a 404 whose body names the server. A 404
        naming nothing (a gateway's "API does not exist", a wrong endpoint) proves nothing and is raised."""
        try:
            await self.show_server(server_id)
        except NotFound as exc:
            # Nova's itemNotFound and Huawei's Ecs.0614 name the server; a body naming nothing proves nothing.
            if server_id.lower() in exc.message.lower() or (exc.code or "").upper() == "ECS.0614":
                return True
            raise
        return False

    async def attachable_nics(self, server_id: str) -> int | None:
        """How many more NICs the server can take, from Huawei's v1 ``os-interface_extension``
        (``attachableQuantity.free_nic``); None when the cloud has no such API (upstream OpenStack) or
        does not say. A missing server still raises ``NotFound``."""
        op = "attachable_nics"
        url = f"{self._cloudservers}/{_check_id('server ID', server_id)}/os-interface_extension"
        response = await self._v1_get_if_served(op, url, server_id)
        if response is None:
            return None
        return _free_nics(self._parse(op, response, "attachableQuantity"))

    async def _v1_get_if_served(self, op: str, url: str, server_id: str) -> httpx.Response | None:
        """A GET of Huawei's v1 API, None where the cloud has no such API; a missing server raises NotFound."""
        try:
            return await self._call(op, "GET", url, server_id, ok=frozenset({200}), not_found_what="server")
        except ApiNotFound:
            return None
        except NotFound as exc:
            if exc.what == "server" and exc.code is not None and exc.code.upper().startswith("ECS."):
                raise
            return None  # Nova answers an unknown path with a bare 404

    async def detach(self, server_id: str, port_id: str) -> None:
        """Start detaching; the cloud finishes asynchronously. NotFound means it is not attached."""
        await self._call(
            "detach",
            "DELETE",
            self._url(server_id, port_id),
            server_id,
            ok=frozenset({200, 202, 204}),
            not_found_what="interface",
        )

    # -- Huawei's v1 NIC API: batch add / delete answer a job, followed with show_job ---------------

    async def add_nic(
        self,
        server_id: str,
        *,
        net_id: str | None = None,
        port_id: str | None = None,
        fixed_ip: str | None = None,
        security_groups: Sequence[str] = (),
        ipv6: bool = False,
        ipv6_bandwidth: str | None = None,
    ) -> str:
        """``POST /v1/{project}/cloudservers/{server}/nics`` with one NIC; returns the job ID. ``net_id`` is the
        VPC subnet's network ID (what v2.1 calls ``net_id``, v1 ``subnet_id``). With ``port_id`` the cloud
        ignores groups and address (the port keeps its own)."""
        if (net_id is None) == (port_id is None):
            raise ValueError("exactly one of net_id and port_id is required")
        if port_id is not None and (fixed_ip is not None or ipv6):
            raise ValueError("fixed_ip and ipv6 can only be given with net_id")
        if ipv6_bandwidth is not None and not ipv6:
            raise ValueError("ipv6_bandwidth needs ipv6")
        nic: dict[str, Any] = {}
        if port_id is not None:
            nic["port_id"] = _check_id("port ID", port_id)
        else:
            assert net_id is not None
            nic["subnet_id"] = _check_id("network ID", net_id)
            if fixed_ip is not None:
                nic["ip_address"] = _check_ip(fixed_ip)
            if security_groups:
                nic["security_groups"] = [{"id": _check_id("security group ID", g)} for g in security_groups]
            if ipv6:
                nic["ipv6_enable"] = True
                if ipv6_bandwidth is not None:
                    nic["ipv6_bandwidth"] = {"id": _check_id("bandwidth ID", ipv6_bandwidth)}
        op = "add_nic"
        url = f"{self._cloudservers}/{_check_id('server ID', server_id)}/nics"
        response = await self._call(
            op, "POST", url, server_id, ok=frozenset({200, 202}), json={"nics": [nic]}, not_found_what="server"
        )
        return self._job_id(op, response)

    async def delete_nics(self, server_id: str, port_ids: Sequence[str]) -> str:
        """``POST .../nics/delete``: detaches the NICs **and deletes their ports**; returns the job ID."""
        if not port_ids:
            raise ValueError("no port to delete")
        op = "delete_nics"
        url = f"{self._cloudservers}/{_check_id('server ID', server_id)}/nics/delete"
        body = {"nics": [{"id": _check_id("port ID", p)} for p in port_ids]}
        response = await self._call(
            op, "POST", url, server_id, ok=frozenset({200, 202}), json=body, not_found_what="server"
        )
        return self._job_id(op, response)

    def _job_id(self, op: str, response: httpx.Response) -> str:
        job_id = self._parse(op, response, "job_id")
        if not isinstance(job_id, str) or not _ID.fullmatch(job_id.strip()):
            raise CloudError(op, "malformed response: job_id is not an ID", status=response.status_code)
        return job_id.strip()

    async def show_job(self, job_id: str) -> Job:
        """``GET /v1/{project}/jobs/{job}``. A 404 is ``NotFound(what="job")``: Huawei keeps jobs for a day."""
        op = "show_job"
        response = await self._call(
            op, "GET", f"{self._v1}/jobs/{_check_id('job ID', job_id)}", "", ok=frozenset({200}), not_found_what="job"
        )
        try:
            doc = response.json()
            return Job.from_api(doc)
        except ValueError as exc:
            raise CloudError(
                op, f"malformed job: {exc}", status=response.status_code, request_id=request_id_of(response.headers)
            ) from None

    async def list_v1(self, server_id: str) -> builtins.list[InterfaceAttachment]:
        """Huawei's v1 list: the NICs with ``pci_address`` and ``driver_mode`` (and what v2.1 lists)."""
        op = "list_v1"
        response = await self._call(
            op, "GET", self._v1_list_url(server_id), server_id, ok=frozenset({200}), not_found_what="server"
        )
        return self._v1_list(op, response)[0]

    async def list_with_room(self, server_id: str) -> tuple[builtins.list[InterfaceAttachment], int | None] | None:
        """The NICs and how many more the server can take, in one call: Huawei's v1 list also answers
        ``attachableQuantity.free_nic``. None where the cloud has no v1 API (upstream OpenStack); a missing
        server raises ``NotFound``, as ``attachable_nics`` does."""
        op = "list_with_room"
        response = await self._v1_get_if_served(op, self._v1_list_url(server_id), server_id)
        return None if response is None else self._v1_list(op, response)

    def _v1_list_url(self, server_id: str) -> str:
        return f"{self._cloudservers}/{_check_id('server ID', server_id)}/os-interface"

    def _v1_list(self, op: str, response: httpx.Response) -> tuple[builtins.list[InterfaceAttachment], int | None]:
        raw = self._parse(op, response, "interfaceAttachments")
        if not isinstance(raw, builtins.list):
            raise CloudError(op, "malformed response: interfaceAttachments is not a list", status=200)
        ports = [self._attachment(op, response, item) for item in raw]
        return ports, _free_nics(response.json().get("attachableQuantity"))


def _free_nics(quantity: object) -> int | None:
    """``attachableQuantity.free_nic`` if the cloud said a count, else None."""
    free = quantity.get("free_nic") if isinstance(quantity, Mapping) else None
    if isinstance(free, bool) or not isinstance(free, int) or free < 0:
        return None
    return free
