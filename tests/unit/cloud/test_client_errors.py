"""Every error shape the cloud sends maps onto the right CloudError subclass."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable

import httpx
import pytest

from ecs_nic_operator.cloud import errors as E
from ecs_nic_operator.cloud.auth import TokenAuth
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.errors import parse_error_body, parse_retry_after

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
PORT = "ce531f90-0000-4000-8000-000000000002"
TOKEN = "gAAAAA-very-secret-token"


def nova(kind: str, code: int, message: str) -> bytes:
    return json.dumps({kind: {"message": message, "code": code}}).encode()


def huawei(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def gateway(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "error_msg": message}).encode()


def client_answering(status: int, body: bytes, headers: dict[str, str] | None = None) -> EcsClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"X-Request-Id": "req-123", **(headers or {})})

    return EcsClient("https://ecs.example.com", PROJECT, TokenAuth(TOKEN), transport=httpx.MockTransport(handler))


CASES: list[tuple[str, int, bytes, dict[str, str], type[E.CloudError], str | None]] = [
    (
        "nova 400",
        400,
        nova("badRequest", 400, "Invalid input for field/attribute net_id."),
        {},
        E.BadRequest,
        "badRequest",
    ),
    ("ecs 400", 400, huawei("Ecs.0005", "Request parameter error."), {}, E.BadRequest, "Ecs.0005"),
    ("ecs 400 quota", 400, huawei("Ecs.0013", "Insufficient port quota."), {}, E.QuotaExceeded, "Ecs.0013"),
    (
        "nova 404 server",
        404,
        nova("itemNotFound", 404, "Instance x could not be found."),
        {},
        E.NotFound,
        "itemNotFound",
    ),
    (
        "nova 409 busy",
        409,
        nova(
            "conflictingRequest",
            409,
            "Cannot 'attach_interface' instance x while it is in task_state rebooting",
        ),
        {},
        E.ServerBusy,
        "conflictingRequest",
    ),
    (
        "nova 409 vm_state",
        409,
        nova("conflictingRequest", 409, "Cannot 'detach_interface' instance x while it is in vm_state building"),
        {},
        E.ServerBusy,
        None,
    ),
    (
        "nova 409 port in use",
        409,
        nova("conflictingRequest", 409, f"Port {PORT} is still in use."),
        {},
        E.InUse,
        None,
    ),
    (
        "nova 409 ip in use",
        409,
        nova("conflictingRequest", 409, "Fixed IP address 192.168.1.3 is already in use on instance y."),
        {},
        E.InUse,
        None,
    ),
    ("unknown 409", 409, b"", {}, E.ServerBusy, None),
    (
        "gateway 429",
        429,
        gateway("APIGW.0308", "The throttling threshold has been reached"),
        {},
        E.Throttled,
        "APIGW.0308",
    ),
    (
        "gateway 429 retry-after",
        429,
        gateway("APIGW.0308", "throttled"),
        {"Retry-After": "7"},
        E.Throttled,
        None,
    ),
    ("500", 500, nova("computeFault", 500, "Unexpected API Error."), {}, E.CloudUnavailable, "computeFault"),
    ("502 html", 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {}, E.CloudUnavailable, None),
    ("503 retry-after", 503, b"", {"Retry-After": "3"}, E.CloudUnavailable, None),
    (
        "401 gateway",
        401,
        gateway("APIGW.0301", "Incorrect IAM authentication information"),
        {},
        E.AuthError,
        "APIGW.0301",
    ),
    ("401 plain", 401, b"Authentication required", {}, E.AuthError, None),
    (
        "403 policy",
        403,
        nova("forbidden", 403, "Policy doesn't allow os_compute_api:os-attach-interfaces:create"),
        {},
        E.AuthError,
        "forbidden",
    ),
    (
        "403 port quota",
        403,
        nova("forbidden", 403, "Maximum number of ports exceeded"),
        {},
        E.QuotaExceeded,
        None,
    ),
    (
        "403 ecs quota",
        403,
        huawei("Ecs.0221", "The NIC quota is insufficient."),
        {},
        E.QuotaExceeded,
        "Ecs.0221",
    ),
    ("403 primary", 403, nova("forbidden", 403, "Failed to detach the primary NIC"), {}, E.Forbidden, None),
    (
        "413 rate",
        413,
        nova("overLimit", 413, "This request was rate-limited."),
        {"Retry-After": "2"},
        E.Throttled,
        None,
    ),
    ("405", 405, b"method not allowed", {}, E.BadRequest, None),
    ("302", 302, b"", {"Location": "https://elsewhere/"}, E.CloudError, None),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_error_mapping(
    status: int, body: bytes, headers: dict[str, str], cls: type[E.CloudError], code: str | None
) -> None:
    async with client_answering(status, body, headers) as client:
        with pytest.raises(E.CloudError) as info:
            await client.show(SERVER, PORT)
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.request_id == "req-123"
    assert err.operation == "show"
    if code is not None:
        assert err.code == code
    assert err.message
    assert TOKEN not in str(err) and TOKEN not in repr(err)
    assert str(status) in str(err) and "req-123" in str(err)


@pytest.mark.parametrize(
    ("message", "what"),
    [
        (f"Port {PORT} is not attached", "interface"),
        ("Instance x could not be found.", "server"),
        ("Network n could not be found.", "network"),
        (f"Port id {PORT} could not be found.", "port"),
        ("", None),  # no API error document: confirms nothing
    ],
)
async def test_not_found_what(message: str, what: str | None) -> None:
    body = nova("itemNotFound", 404, message) if message else b""
    async with client_answering(404, body) as client:
        with pytest.raises(E.NotFound) as info:
            await client.detach(SERVER, PORT)
    assert info.value.what == what


async def test_list_404_defaults_to_server_only_when_the_api_says_so() -> None:
    async with client_answering(404, nova("itemNotFound", 404, "The resource could not be found.")) as client:
        with pytest.raises(E.NotFound) as info:
            await client.list(SERVER)
    assert info.value.what == "server"
    # A plain-text 404 (a proxy, a wrong path) is no API answer: it must never read as "the server is gone",
    # which would let a finalizer go and leak the NIC.
    async with client_answering(404, b"404 Not Found\n\nThe resource could not be found.") as client:
        with pytest.raises(E.NotFound) as info:
            await client.list(SERVER)
    assert info.value.what is None
    assert info.value.message == "404 Not Found The resource could not be found."


def test_retry_after_values() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nan") is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=lambda: now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=lambda: now) == 0.0


async def test_throttled_retry_after() -> None:
    async with client_answering(429, gateway("APIGW.0308", "x"), {"Retry-After": "7"}) as client:
        with pytest.raises(E.Throttled) as info:
            await client.list(SERVER)
    assert info.value.retry_after == 7.0
    async with client_answering(429, gateway("APIGW.0308", "x")) as client:
        with pytest.raises(E.Throttled) as info:
            await client.list(SERVER)
    assert info.value.retry_after is None
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    async with client_answering(429, b"", {"Retry-After": when}) as client:
        with pytest.raises(E.Throttled) as info:
            await client.list(SERVER)
    assert info.value.retry_after is not None and 55 < info.value.retry_after <= 60


def test_parse_error_body_shapes() -> None:
    assert parse_error_body(nova("itemNotFound", 404, " gone ")) == ("itemNotFound", "gone")
    assert parse_error_body(huawei("Ecs.0114", "Server does not exist.")) == (
        "Ecs.0114",
        "Server does not exist.",
    )
    assert parse_error_body(gateway("APIGW.0308", "throttled")) == ("APIGW.0308", "throttled")
    assert parse_error_body(b'{"error": {"code": 401, "message": "no", "title": "Unauthorized"}}') == (
        "401",
        "no",
    )
    assert parse_error_body(b"") == (None, None)
    assert parse_error_body(b"\xff\xfe not utf8")[1] is not None
    assert parse_error_body(b"[1, 2]") == (None, "[1, 2]")
    long = parse_error_body(b"x" * 5000)[1]
    assert long is not None and len(long) <= 300


def _raising(exc: Callable[[httpx.Request], Exception]) -> EcsClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(request)

    return EcsClient("https://ecs.example.com", PROJECT, TokenAuth(TOKEN), transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "make",
    [
        lambda r: httpx.ReadTimeout("timed out", request=r),
        lambda r: httpx.ConnectTimeout("timed out", request=r),
        lambda r: httpx.ConnectError("connection refused", request=r),
        lambda r: httpx.RemoteProtocolError("Server disconnected without sending a response.", request=r),
        lambda r: httpx.ReadError("connection reset by peer", request=r),
    ],
    ids=["read-timeout", "connect-timeout", "refused", "dropped", "reset"],
)
async def test_transport_failures_are_unavailable(make: Callable[[httpx.Request], Exception]) -> None:
    async with _raising(make) as client:
        with pytest.raises(E.CloudUnavailable) as info:
            await client.attach(SERVER, net_id="n1")
    assert info.value.status is None
    assert info.value.retry_after is None
    assert isinstance(info.value, E.RetryableError)
    assert TOKEN not in str(info.value)


async def test_real_timeout_is_unavailable() -> None:
    import asyncio

    # MockTransport does not enforce timeouts, so exercise a real socket that never answers.
    server = await asyncio.start_server(lambda r, w: asyncio.sleep(10), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with EcsClient(f"http://127.0.0.1:{port}", PROJECT, TokenAuth(TOKEN), timeout=0.2) as client:
            with pytest.raises(E.CloudUnavailable, match="timed out"):
                await client.list(SERVER)
    finally:
        server.close()


async def test_dropped_connection_on_real_socket() -> None:
    import asyncio

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with EcsClient(f"http://127.0.0.1:{port}", PROJECT, TokenAuth(TOKEN)) as client:
            with pytest.raises(E.CloudUnavailable, match="transport error"):
                await client.list(SERVER)
    finally:
        server.close()


def test_hierarchy() -> None:
    assert issubclass(E.CloudUnavailable, E.RetryableError)
    assert issubclass(E.ServerBusy, E.RetryableError)
    assert issubclass(E.Throttled, E.RetryableError)
    for cls in (E.BadRequest, E.NotFound, E.InUse, E.QuotaExceeded, E.Forbidden):
        assert issubclass(cls, E.SpecError)
    assert not issubclass(E.AuthError, E.SpecError | E.RetryableError)
    err = E.CloudError("attach", "boom", status=500, code="X", request_id="r")
    assert str(err) == "attach: boom (status=500, code=X, request_id=r)"
    assert str(E.CloudError("attach", "boom")) == "attach: boom"
