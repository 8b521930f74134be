"""EcsClient: requests it sends, normalisation, validation, limiter, metrics and logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import httpx
import pytest
from prometheus_client import REGISTRY

from ecs_nic_operator.cloud.auth import TokenAuth
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.errors import CloudError, NotFound
from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.cloud.ratelimit import TokenBucket
from ecs_nic_operator.metrics import CloudCallMetrics

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
PORT = "ce531f90-0000-4000-8000-000000000002"
NET = "3cb9bc59-0000-4000-8000-000000000003"
TOKEN = "tok-secret-value"

# As in Huawei's published example response: note the stray space in port_id and upper-case MAC.
HUAWEI_EXAMPLE = {
    "port_state": "ACTIVE",
    "fixed_ips": [{"subnet_id": " d9cfef77-0000-4000-8000-000000000004 ", "ip_address": "192.168.1.3"}],
    "port_id": f" {PORT}",
    "net_id": NET,
    "mac_addr": "FA:16:3E:63:75:B2",
}


class Recorder:
    def __init__(self, response: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response or httpx.Response(200, json={"interfaceAttachment": HUAWEI_EXAMPLE})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


def make(rec: Recorder, **kw: object) -> EcsClient:
    return EcsClient(
        "https://ecs.example.com/",
        PROJECT,
        TokenAuth(TOKEN),
        transport=httpx.MockTransport(rec),
        **kw,  # type: ignore[arg-type]
    )


def test_from_api_normalises() -> None:
    att = InterfaceAttachment.from_api(HUAWEI_EXAMPLE)
    assert att == InterfaceAttachment(
        port_id=PORT,
        net_id=NET,
        mac_addr="fa:16:3e:63:75:b2",
        port_state="ACTIVE",
        fixed_ips=(FixedIp("d9cfef77-0000-4000-8000-000000000004", "192.168.1.3"),),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        att.port_id = "x"  # type: ignore[misc]
    assert InterfaceAttachment.from_api({"port_id": "p", "fixed_ips": None}).fixed_ips == ()
    for bad in ({}, {"port_id": " "}, {"port_id": 5}, {"port_id": "p", "fixed_ips": "x"}, [1]):
        with pytest.raises(ValueError):
            InterfaceAttachment.from_api(bad)  # type: ignore[arg-type]


async def test_attach_by_net_with_ip() -> None:
    rec = Recorder()
    async with make(rec) as client:
        att = await client.attach(SERVER, net_id=NET, fixed_ip="192.168.1.3")
    assert att.port_id == PORT and att.mac_addr == "fa:16:3e:63:75:b2"
    (req,) = rec.requests
    assert req.method == "POST"
    assert str(req.url) == f"https://ecs.example.com/v2.1/{PROJECT}/servers/{SERVER}/os-interface"
    assert json.loads(req.content) == {
        "interfaceAttachment": {"net_id": NET, "fixed_ips": [{"ip_address": "192.168.1.3"}]}
    }
    assert req.headers["X-Auth-Token"] == TOKEN
    assert req.headers["Content-Type"] == "application/json"


async def test_attach_by_port() -> None:
    rec = Recorder()
    async with make(rec) as client:
        await client.attach(SERVER, port_id=PORT)
    assert json.loads(rec.requests[0].content) == {"interfaceAttachment": {"port_id": PORT}}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"net_id": NET, "port_id": PORT},
        {"port_id": PORT, "fixed_ip": "192.168.1.3"},
        {"net_id": NET, "fixed_ip": "not-an-ip"},
        {"net_id": "../../x"},
    ],
)
async def test_attach_validation(kwargs: dict[str, str]) -> None:
    rec = Recorder()
    async with make(rec) as client:
        with pytest.raises(ValueError):
            await client.attach(SERVER, **kwargs)
    assert rec.requests == []


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x?y", "%2e%2e"])
async def test_ids_cannot_escape_the_path(bad: str) -> None:
    rec = Recorder()
    async with make(rec) as client:
        with pytest.raises(ValueError):
            await client.show(bad, PORT)
        with pytest.raises(ValueError):
            await client.detach(SERVER, bad)
    assert rec.requests == []


async def test_list_show_detach() -> None:
    rec = Recorder(httpx.Response(200, json={"interfaceAttachments": [HUAWEI_EXAMPLE, HUAWEI_EXAMPLE]}))
    async with make(rec) as client:
        atts = await client.list(SERVER)
        assert [a.port_id for a in atts] == [PORT, PORT]
        rec.response = httpx.Response(200, json={"interfaceAttachment": HUAWEI_EXAMPLE})
        assert (await client.show(SERVER, PORT)).port_state == "ACTIVE"
        rec.response = httpx.Response(202)
        await client.detach(SERVER, PORT)
        rec.response = httpx.Response(404, json={"itemNotFound": {"message": "x", "code": 404}})
        with pytest.raises(NotFound):
            await client.detach(SERVER, PORT)
    assert [(r.method, r.url.path) for r in rec.requests] == [
        ("GET", f"/v2.1/{PROJECT}/servers/{SERVER}/os-interface"),
        ("GET", f"/v2.1/{PROJECT}/servers/{SERVER}/os-interface/{PORT}"),
        ("DELETE", f"/v2.1/{PROJECT}/servers/{SERVER}/os-interface/{PORT}"),
        ("DELETE", f"/v2.1/{PROJECT}/servers/{SERVER}/os-interface/{PORT}"),
    ]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"other": 1}),
        httpx.Response(200, json={"interfaceAttachments": {"a": 1}}),
        httpx.Response(200, json={"interfaceAttachments": [{"port_id": 3}]}),
    ],
)
async def test_malformed_success_bodies(response: httpx.Response) -> None:
    from ecs_nic_operator.cloud.errors import CloudError

    async with make(Recorder(response)) as client:
        with pytest.raises(CloudError, match="malformed"):
            await client.list(SERVER)


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        ("https://ecs.ap-southeast-1.myhuaweicloud.com", True),
        ("http://127.0.0.1:8774", True),
        ("http://127.8.9.10:8774", True),
        ("http://localhost:8774", True),
        ("http://[::1]:8774", True),
        ("http://ecs.example.com", False),
        ("http://10.0.0.1", False),
        ("ftp://127.0.0.1", False),
        ("https://user:pw@ecs.example.com", False),
        ("not a url", False),
    ],
)
def test_endpoint_scheme(endpoint: str, ok: bool) -> None:
    if ok:
        EcsClient(endpoint, PROJECT, TokenAuth(TOKEN))
    else:
        with pytest.raises(ValueError) as info:
            EcsClient(endpoint, PROJECT, TokenAuth(TOKEN))
        assert "pw" not in str(info.value)


async def test_every_request_takes_a_limiter_token() -> None:
    rec = Recorder(httpx.Response(200, json={"interfaceAttachments": []}))
    bucket = TokenBucket(qps=20, burst=2)
    async with make(rec, limiter=bucket) as client:
        start = time.monotonic()
        for _ in range(6):
            await client.list(SERVER)
        elapsed = time.monotonic() - start
    assert elapsed >= (6 - 2) / 20
    assert len(rec.requests) == 6


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_and_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    ok_before = _sample("ecsnic_cloud_calls_total", {"operation": "show", "outcome": "ok"})
    nf_before = _sample("ecsnic_cloud_calls_total", {"operation": "show", "outcome": "NotFound"})
    lat_before = _sample("ecsnic_cloud_call_duration_seconds_count", {"operation": "show"})
    wait_before = _sample("ecsnic_rate_limit_wait_seconds_count", {})
    rec = Recorder(httpx.Response(200, json={"interfaceAttachment": HUAWEI_EXAMPLE}, headers={"X-Request-Id": "rq-9"}))
    caplog.set_level(logging.DEBUG, logger="ecs_nic_operator.cloud")
    async with make(rec, limiter=TokenBucket(100, 10), observer=CloudCallMetrics()) as client:
        await client.show(SERVER, PORT)
        rec.response = httpx.Response(404)
        with pytest.raises(NotFound):
            await client.show(SERVER, PORT)
    assert _sample("ecsnic_cloud_calls_total", {"operation": "show", "outcome": "ok"}) == ok_before + 1
    assert _sample("ecsnic_cloud_calls_total", {"operation": "show", "outcome": "NotFound"}) == nf_before + 1
    assert _sample("ecsnic_cloud_call_duration_seconds_count", {"operation": "show"}) == lat_before + 2
    assert _sample("ecsnic_rate_limit_wait_seconds_count", {}) == wait_before + 2
    lines = [r.getMessage() for r in caplog.records if r.name == "ecs_nic_operator.cloud"]
    assert any("show" in m and SERVER in m and "status=200" in m and "rq-9" in m for m in lines)
    assert any("status=404" in m and "NotFound" in m for m in lines)
    assert all(TOKEN not in m for m in lines)


def test_repr_has_no_secret() -> None:
    client = EcsClient("https://ecs.example.com", PROJECT, TokenAuth(TOKEN))
    assert TOKEN not in repr(client)


async def test_show_server_and_a_404_that_names_it_or_not() -> None:
    rec = Recorder(httpx.Response(200, json={"server": {"id": SERVER, "status": "ACTIVE"}}))
    async with make(rec) as client:
        assert (await client.show_server(SERVER))["id"] == SERVER
        assert not await client.server_gone(SERVER)
        assert str(rec.requests[-1].url).endswith(f"/v2.1/{PROJECT}/servers/{SERVER}")
        named = {"itemNotFound": {"code": 404, "message": f"Instance {SERVER} could not be found."}}
        rec.response = httpx.Response(404, json=named)
        assert await client.server_gone(SERVER)
        # A gateway's 404 names nothing: it proves nothing about the server.
        rec.response = httpx.Response(404, json={"error_code": "APIGW.0101", "error_msg": "The API does not exist"})
        with pytest.raises(CloudError):
            await client.server_gone(SERVER)
        huawei = {"error": {"code": "Ecs.0614", "message": "The ECS does not exist."}}
        rec.response = httpx.Response(404, json=huawei)
        assert await client.server_gone(SERVER)
        rec.response = httpx.Response(404, text="404: Not Found")
        with pytest.raises(NotFound):
            await client.server_gone(SERVER)
