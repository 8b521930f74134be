"""Every code in Huawei's error table (REFERENCE.md), in each of the three body shapes, maps to the reason a user
sees and the pace of the next try: by the cloud's code first, the HTTP status second."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest

from ecs_nic_operator.cloud import errors as E
from ecs_nic_operator.cloud.auth import TokenAuth
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.config import Settings
from ecs_nic_operator.reconcile.errors import classify

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
SETTINGS = Settings(backoff_min=1.0, backoff_max=120.0, spec_retry=300.0)

SECONDS = "seconds"  # backoff from backoff_min: the first retries within a few seconds
MINUTE = "minute"  # what the cloud asked for: about 60 s
SLOW = "slow"  # a person must act: spec_retry


@dataclass(frozen=True)
class Row:
    code: str
    status: int
    cls: type[E.CloudError]
    reason: str
    pace: str
    taken_effect: bool = False  # the call may have changed the cloud: list before attaching again
    words: tuple[str, ...] = ()  # what the message must tell the user


TABLE = [
    Row("Ecs.0010", 400, E.InUse, Reason.IP_IN_USE, SLOW),
    Row("Ecs.0012", 400, E.SubnetExhausted, Reason.SUBNET_EXHAUSTED, SLOW),
    Row("Ecs.0038", 400, E.NotFound, Reason.NETWORK_NOT_FOUND, SLOW),
    Row("Ecs.0039", 400, E.InvalidIp, Reason.INVALID_IP, SLOW),
    Row("Ecs.0050", 400, E.QuotaExceeded, Reason.QUOTA_EXCEEDED, SLOW),
    Row("Ecs.0100", 400, E.ServerBusy, Reason.SERVER_BUSY, SECONDS),
    Row("Ecs.0605", 400, E.ServerLocked, Reason.SERVER_LOCKED, SLOW, words=("locked", "unlock")),
    Row("Ecs.0614", 404, E.NotFound, Reason.SERVER_NOT_FOUND, SLOW),
    Row("Ecs.0919", 400, E.InUse, Reason.PORT_IN_USE, SLOW),
    Row("Ecs.1000", 400, E.CloudInternalError, Reason.CLOUD_UNAVAILABLE, SECONDS, taken_effect=True),
    Row("Ecs.1001", 400, E.CloudInternalError, Reason.CLOUD_UNAVAILABLE, SECONDS, taken_effect=True),
    Row("Ecs.1999", 500, E.CloudInternalError, Reason.CLOUD_UNAVAILABLE, SECONDS, taken_effect=True),
    Row("Ecs.0603", 501, E.ServerBusy, Reason.SERVER_BUSY, MINUTE),
    Row("APIGW.0308", 429, E.Throttled, Reason.THROTTLED, SECONDS),
    Row("Common.1503", 429, E.Throttled, Reason.THROTTLED, SECONDS),
    Row("APIGW.0301", 401, E.AuthError, Reason.CREDENTIALS_REJECTED, SLOW),
    Row("APIGW.0101", 404, E.ApiNotFound, Reason.API_NOT_FOUND, SLOW, words=("endpoint",)),
    # Unknown codes fall back to the status: 4xx stay the user's to fix, 5xx are transient.
    Row("Ecs.0999", 400, E.BadRequest, Reason.INVALID_REQUEST, SLOW),
    Row("Ecs.0999", 403, E.AuthError, Reason.CREDENTIALS_REJECTED, SLOW),
    Row("Ecs.0999", 503, E.CloudUnavailable, Reason.CLOUD_UNAVAILABLE, SECONDS, taken_effect=True),
]


def ecs_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def gateway_body(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "error_msg": message}).encode()


def nova_body(code: str, message: str) -> bytes:
    # Huawei's Nova-compatible API keeps Nova's envelope and carries its own code inside.
    return json.dumps({"badRequest": {"code": code, "message": message}}).encode()


SHAPES = {"ecs": ecs_body, "gateway": gateway_body, "nova": nova_body}


async def raised(status: int, body: bytes) -> E.CloudError:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"X-Request-Id": "req-7"})

    transport = httpx.MockTransport(handler)
    async with EcsClient("https://ecs.example.com", PROJECT, TokenAuth("t"), transport=transport) as client:
        with pytest.raises(E.CloudError) as info:
            await client.attach(SERVER, net_id="3cb9bc59-5699-4588-a4b1-b87f96708bc6")
    return info.value


def assert_pace(pace: str, delay: float) -> None:
    if pace == SECONDS:
        assert 0.5 <= delay <= 2 * SETTINGS.backoff_min * 2, delay
    elif pace == MINUTE:
        assert 60 <= delay <= 72, delay
    else:
        assert 0.9 * SETTINGS.spec_retry <= delay <= 1.1 * SETTINGS.spec_retry, delay


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("row", TABLE, ids=[f"{r.code}-{r.status}" for r in TABLE])
async def test_code_decides_reason_and_pace(row: Row, shape: str) -> None:
    err = await raised(row.status, SHAPES[shape](row.code, f"cloud says {row.code}"))
    assert type(err) is row.cls
    assert (err.code, err.status, err.request_id) == (row.code, row.status, "req-7")
    verdict = classify(err, SETTINGS, 1)
    assert verdict.reason == row.reason
    assert_pace(row.pace, verdict.delay)
    assert verdict.may_have_taken_effect is row.taken_effect
    assert verdict.blocks_ready is (row.pace == SLOW)
    assert row.code in verdict.message
    for word in row.words:
        assert word in verdict.message


def test_the_table_covers_every_code_in_the_reference() -> None:
    wanted = {
        "Ecs.0010",
        "Ecs.0012",
        "Ecs.0038",
        "Ecs.0039",
        "Ecs.0050",
        "Ecs.0100",
        "Ecs.0605",
        "Ecs.0614",
        "Ecs.0919",
        "Ecs.1000",
        "Ecs.1001",
        "Ecs.0603",
        "APIGW.0308",
        "Common.1503",
        "APIGW.0301",
        "APIGW.0101",
    }
    assert wanted <= {r.code for r in TABLE}


async def test_in_use_codes_reach_the_adoption_path() -> None:
    # The controller adopts on errors.InUse: both Huawei codes must raise it, whatever the status says.
    for code in ("Ecs.0010", "Ecs.0919"):
        assert isinstance(await raised(400, ecs_body(code, "in use")), E.InUse)


async def test_a_gateway_404_is_never_a_missing_server() -> None:
    err = await raised(404, gateway_body("APIGW.0101", "The API does not exist or has not been published"))
    assert not isinstance(err, E.NotFound)  # the finalizer releases on NotFound(what="server")
    err = await raised(404, ecs_body("Ecs.0614", "The ECS does not exist."))
    assert isinstance(err, E.NotFound) and err.what == "server"


async def test_code_wins_over_status_and_retry_after_over_the_default_minute() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            501, content=ecs_body("Ecs.0603", "try again 1 minute later"), headers={"Retry-After": "5"}
        )

    async with EcsClient(
        "https://ecs.example.com", PROJECT, TokenAuth("t"), transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(E.ServerBusy) as info:
            await client.list(SERVER)
    assert info.value.retry_after == 5.0
    assert not isinstance(info.value, E.CloudUnavailable)  # a 501 here is no outage


@pytest.mark.parametrize(
    ("status", "message", "cls", "reason"),
    [
        (409, "Instance x is locked", E.ServerLocked, Reason.SERVER_LOCKED),
        (400, "No more IP addresses available on network n.", E.SubnetExhausted, Reason.SUBNET_EXHAUSTED),
        (409, "Cannot 'attach_interface' instance x while it is in task_state x", E.ServerBusy, Reason.SERVER_BUSY),
    ],
)
async def test_nova_wordings_of_the_same_situations(
    status: int, message: str, cls: type[E.CloudError], reason: str
) -> None:
    err = await raised(status, json.dumps({"conflictingRequest": {"code": status, "message": message}}).encode())
    assert type(err) is cls
    assert err.code == "conflictingRequest"  # Nova's numeric code only repeats the status
    assert classify(err, SETTINGS, 1).reason == reason
