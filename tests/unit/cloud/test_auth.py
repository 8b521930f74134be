"""Token, Keystone password and secret-factory auth; secrets never shown."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import httpx
import pytest

from ecs_nic_operator.cloud.auth import (
    AkSkAuth,
    CredentialsError,
    KeystonePasswordAuth,
    TokenAuth,
    auth_from_secret,
)
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.errors import AuthError, CloudUnavailable

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
PASSWORD = "hunter2-Pa55w0rd!"
SK = "sk-very-secret-0123456789"
STS = "sts-secret-token"
IAM = "https://iam.example.com"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeCloud:
    """A fake IAM (issues numbered tokens) in front of a fake ECS (accepts only the newest token)."""

    def __init__(self, clock: Clock, lifetime: float = 24 * 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.logins: list[dict[str, object]] = []
        self.valid: set[str] = set()
        self.ecs_calls = 0
        self.login_delay = 0.0
        self.login_status = 201

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "iam.example.com":
            assert request.url.path == "/v3/auth/tokens"
            self.logins.append(json.loads(request.content))
            if self.login_delay:
                await asyncio.sleep(self.login_delay)
            if self.login_status != 201:
                return httpx.Response(
                    self.login_status,
                    json={
                        "error": {
                            "code": self.login_status,
                            "message": "The request you have made requires authentication.",
                        }
                    },
                )
            token = f"token-{len(self.logins)}"
            self.valid = {token}
            return httpx.Response(
                201,
                headers={"X-Subject-Token": token},
                json={"token": {"expires_at": iso(self.clock.now + self.lifetime)}},
            )
        self.ecs_calls += 1
        if request.headers.get("X-Auth-Token") not in self.valid:
            return httpx.Response(401, json={"error": {"code": 401, "message": "unauthorized"}})
        return httpx.Response(200, json={"interfaceAttachments": []})


def keystone(cloud: FakeCloud, url: str = IAM) -> tuple[KeystonePasswordAuth, EcsClient]:
    auth = KeystonePasswordAuth(url, "alice", PASSWORD, "Default", PROJECT, clock=cloud.clock)
    client = EcsClient("https://ecs.example.com", PROJECT, auth, transport=httpx.MockTransport(cloud))
    return auth, client


async def test_keystone_login_body_and_caching() -> None:
    cloud = FakeCloud(Clock())
    auth, client = keystone(cloud)
    async with client:
        for _ in range(5):
            await client.list(SERVER)
    assert len(cloud.logins) == 1
    assert cloud.logins[0] == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "alice", "password": PASSWORD, "domain": {"name": "Default"}}},
            },
            "scope": {"project": {"id": PROJECT}},
        }
    }
    assert cloud.ecs_calls == 5
    assert auth.logins == 1


@pytest.mark.parametrize("url", [IAM, IAM + "/", IAM + "/v3", IAM + "/v3/"])
async def test_keystone_url_forms(url: str) -> None:
    cloud = FakeCloud(Clock())
    auth, client = keystone(cloud, url)
    assert str(auth.token_url) == IAM + "/v3/auth/tokens"
    async with client:
        await client.list(SERVER)


async def test_keystone_renews_before_expiry() -> None:
    clock = Clock()
    cloud = FakeCloud(clock, lifetime=24 * 3600)
    _, client = keystone(cloud)
    async with client:
        await client.list(SERVER)
        clock.now += 24 * 3600 - 601  # just outside the 10 min margin: still cached
        await client.list(SERVER)
        assert len(cloud.logins) == 1
        clock.now += 2  # inside the margin: renewed before the cloud rejects it
        await client.list(SERVER)
        assert len(cloud.logins) == 2
    assert cloud.ecs_calls == 3  # no 401 round trip was needed


async def test_keystone_short_lived_token_uses_ten_percent_margin() -> None:
    clock = Clock()
    cloud = FakeCloud(clock, lifetime=100)
    _, client = keystone(cloud)
    async with client:
        await client.list(SERVER)
        clock.now += 89
        await client.list(SERVER)
        assert len(cloud.logins) == 1
        clock.now += 2
        await client.list(SERVER)
        assert len(cloud.logins) == 2


async def test_concurrent_requests_share_one_login() -> None:
    cloud = FakeCloud(Clock())
    cloud.login_delay = 0.05
    _, client = keystone(cloud)
    async with client:
        await asyncio.gather(*(client.list(SERVER) for _ in range(20)))
    assert len(cloud.logins) == 1
    assert cloud.ecs_calls == 20


async def test_401_reauthenticates_once_and_retries_once() -> None:
    cloud = FakeCloud(Clock())
    _, client = keystone(cloud)
    async with client:
        await client.list(SERVER)
        cloud.valid = set()  # token revoked server-side
        await client.list(SERVER)
    assert len(cloud.logins) == 2
    assert cloud.ecs_calls == 3  # ok, 401, retried ok


async def test_concurrent_401s_share_one_relogin() -> None:
    cloud = FakeCloud(Clock())
    _, client = keystone(cloud)
    async with client:
        await client.list(SERVER)
        cloud.valid = set()
        await asyncio.gather(*(client.list(SERVER) for _ in range(10)))
    assert len(cloud.logins) == 2


async def test_persistent_401_is_auth_error_without_loop() -> None:
    cloud = FakeCloud(Clock())

    async def always_401(request: httpx.Request) -> httpx.Response:
        if request.url.host == "iam.example.com":
            return await cloud(request)
        cloud.ecs_calls += 1
        return httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "no"})

    auth = KeystonePasswordAuth(IAM, "alice", PASSWORD, "Default", PROJECT, clock=cloud.clock)
    async with EcsClient("https://ecs.example.com", PROJECT, auth, transport=httpx.MockTransport(always_401)) as c:
        with pytest.raises(AuthError):
            await c.list(SERVER)
    assert cloud.ecs_calls == 2 and len(cloud.logins) == 2


async def test_login_failure_is_auth_error_without_password() -> None:
    cloud = FakeCloud(Clock())
    cloud.login_status = 401
    _, client = keystone(cloud)
    async with client:
        with pytest.raises(AuthError) as info:
            await client.list(SERVER)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
    assert info.value.operation == "keystone_auth"
    assert cloud.ecs_calls == 0


async def test_login_5xx_is_unavailable() -> None:
    cloud = FakeCloud(Clock())
    cloud.login_status = 503
    _, client = keystone(cloud)
    async with client:
        with pytest.raises(CloudUnavailable):
            await client.list(SERVER)


async def test_login_without_expiry_or_token() -> None:
    async def no_expiry(request: httpx.Request) -> httpx.Response:
        if request.url.host == "iam.example.com":
            return httpx.Response(201, headers={"X-Subject-Token": "t"}, json={"token": {}})
        return httpx.Response(200, json={"interfaceAttachments": []})

    auth = KeystonePasswordAuth(IAM, "alice", PASSWORD, "Default", PROJECT)
    async with EcsClient("https://ecs.example.com", PROJECT, auth, transport=httpx.MockTransport(no_expiry)) as c:
        await c.list(SERVER)

    async def no_token(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={})

    auth = KeystonePasswordAuth(IAM, "alice", PASSWORD, "Default", PROJECT)
    async with EcsClient("https://ecs.example.com", PROJECT, auth, transport=httpx.MockTransport(no_token)) as c:
        with pytest.raises(AuthError, match="X-Subject-Token"):
            await c.list(SERVER)


def test_keystone_requires_https() -> None:
    with pytest.raises(ValueError):
        KeystonePasswordAuth("http://iam.example.com", "alice", PASSWORD, "Default", PROJECT)
    KeystonePasswordAuth("http://127.0.0.1:5000", "alice", PASSWORD, "Default", PROJECT)


def test_keystone_is_async_only() -> None:
    auth = KeystonePasswordAuth(IAM, "alice", PASSWORD, "Default", PROJECT)
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with pytest.raises(RuntimeError), httpx.Client(auth=auth, transport=transport) as c:
        c.get("https://ecs.example.com/")


def test_token_auth_header() -> None:
    request = httpx.Request("GET", "https://ecs.example.com/")
    sent = next(TokenAuth("tok").sync_auth_flow(request))
    assert sent.headers["X-Auth-Token"] == "tok"


def test_reprs_hide_secrets() -> None:
    texts = [
        repr(AkSkAuth("AKIDEXAMPLE123", SK, PROJECT, STS)),
        str(AkSkAuth("AKIDEXAMPLE123", SK, PROJECT, STS)),
        repr(TokenAuth(STS)),
        repr(KeystonePasswordAuth(IAM, "alice", PASSWORD, "Default", PROJECT)),
    ]
    for text in texts:
        for secret in (SK, STS, PASSWORD):
            assert secret not in text


def test_factory_types() -> None:
    aksk = auth_from_secret("AKSK", {"accessKey": "AK1\n", "secretKey": SK, "securityToken": STS}, PROJECT)
    assert isinstance(aksk, AkSkAuth)
    assert aksk.access_key == "AK1"  # trailing newline from `echo` stripped
    assert isinstance(auth_from_secret("Token", {"token": "t"}, PROJECT), TokenAuth)
    pw = auth_from_secret(
        "Password",
        {"authUrl": IAM, "username": "alice", "password": PASSWORD, "domainName": "Default"},
        PROJECT,
    )
    assert isinstance(pw, KeystonePasswordAuth)


@pytest.mark.parametrize(
    ("cred_type", "data", "missing"),
    [
        ("AKSK", {"secretKey": SK}, "accessKey"),
        ("AKSK", {"accessKey": "AKvalue123", "secretKey": "  "}, "secretKey"),
        ("Token", {}, "token"),
        ("Password", {"authUrl": IAM, "username": "UserValue", "password": PASSWORD}, "domainName"),
        ("Password", {"authUrl": IAM, "password": PASSWORD, "domainName": "DomainValue"}, "username"),
    ],
)
def test_factory_missing_key_named_not_valued(cred_type: str, data: dict[str, str], missing: str) -> None:
    with pytest.raises(CredentialsError) as info:
        auth_from_secret(cred_type, data, PROJECT)
    assert missing in str(info.value)
    for value in data.values():
        if value.strip():
            assert value not in str(info.value)


def test_factory_rejects_unknown_type_and_insecure_url() -> None:
    with pytest.raises(CredentialsError, match="unknown"):
        auth_from_secret("Kerberos", {}, PROJECT)
    with pytest.raises(CredentialsError) as info:
        auth_from_secret(
            "Password",
            {"authUrl": "http://iam.example.com", "username": "u", "password": PASSWORD, "domainName": "d"},
            PROJECT,
        )
    assert PASSWORD not in str(info.value)
    assert isinstance(info.value, ValueError)


async def test_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cloud = FakeCloud(Clock())
    _, client = keystone(cloud)
    async with client:
        await client.list(SERVER)
        cloud.valid = set()
        await client.list(SERVER)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert PASSWORD not in text
    assert "token-1" not in text and "token-2" not in text


def test_temporary_credentials_are_read_again_before_they_expire() -> None:
    from ecs_nic_operator.cloud.auth import credentials_renew_in

    now = 1_800_000_000.0
    assert credentials_renew_in({"accessKey": "a"}, now) is None  # permanent credentials
    # Huawei's security tokens live 15 min to 24 h: re-read a tenth of the remaining life (at most 10 min) early.
    assert credentials_renew_in({"expiresAt": "2027-01-15T08:00:00Z"}, now - 900) == pytest.approx(810)
    assert credentials_renew_in({"expiresAt": "2027-01-15T08:00:00.587000Z"}, now - 86400) == pytest.approx(
        86400 - 600 + 0.587
    )
    assert credentials_renew_in({"expiresAt": "2027-01-15T08:00:00+00:00"}, now + 60) == 5.0  # expired: no hot loop
    with pytest.raises(CredentialsError, match="expiresAt"):
        credentials_renew_in({"expiresAt": "tomorrow"}, now)
