"""Authentication: seed token, fake Keystone tokens, AK/SK signatures checked against the official SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from ecs_nic_operator.simulator import Simulator

from .conftest import AK, NET, PROJECT, SERVER_A, SK, iface_url, wait_for


def assert_iam_401(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["code"] == "APIGW.0301"
    assert err["message"].startswith("Incorrect IAM authentication information")


async def test_missing_and_bad_token(anon: httpx.AsyncClient) -> None:
    assert_iam_401(await anon.get(iface_url()))
    assert_iam_401(await anon.get(iface_url(), headers={"X-Auth-Token": "nope"}))
    assert_iam_401(await anon.post(iface_url(), json={"interfaceAttachment": {"net_id": NET}}))


def password_body(user: str = "alice", password: str = "s3cret", domain: str = "acme") -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "password": password, "domain": {"name": domain}}},
            },
            "scope": {"project": {"id": PROJECT}},
        }
    }


async def test_keystone_password_token(anon: httpx.AsyncClient, sim: Simulator) -> None:
    r = await anon.post("/v3/auth/tokens", json=password_body())
    assert r.status_code == 201
    token = r.headers["X-Subject-Token"]
    doc = r.json()["token"]
    expires = datetime.strptime(doc["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert doc["project"]["id"] == PROJECT
    compute = next(s for s in doc["catalog"] if s["type"] == "compute")
    assert compute["endpoints"][0]["url"] == f"{sim.url}/v2.1/{PROJECT}"
    r = await anon.get(iface_url(), headers={"X-Auth-Token": token})
    assert r.status_code == 200


async def test_keystone_rejects_bad_password(anon: httpx.AsyncClient) -> None:
    for body in (password_body(password="x"), password_body(user="bob"), password_body(domain="other")):
        r = await anon.post("/v3/auth/tokens", json=body)
        assert r.status_code == 401
        assert "X-Subject-Token" not in r.headers


async def test_issued_token_expires(anon: httpx.AsyncClient) -> None:
    await anon.put("/_simulator/behaviour", json={"tokenTtl": 0.3})
    token = (await anon.post("/v3/auth/tokens", json=password_body())).headers["X-Subject-Token"]
    assert (await anon.get(iface_url(), headers={"X-Auth-Token": token})).status_code == 200

    async def expired() -> bool:
        return (await anon.get(iface_url(), headers={"X-Auth-Token": token})).status_code == 401

    await wait_for(expired)


def signed(
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    query: list[tuple[str, object]] | None = None,
    ak: str = AK,
    sk: str = SK,
    date: str | None = None,
) -> tuple[str, dict[str, str], bytes]:
    """Sign with huaweicloudsdkcore's official Signer; returns (full url, headers, body)."""
    host = urlsplit(url).netloc
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
    if date is not None:
        headers["X-Sdk-Date"] = date
    req = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        uri=path,
        query_params=list(query or []),
        header_params=headers,
        body=body or "",
    )
    Signer(BasicCredentials(ak, sk)).sign(req)
    return f"{url}{req.uri}", dict(req.header_params), body


async def test_aksk_official_signer_accepted(anon: httpx.AsyncClient, sim: Simulator) -> None:
    assert sim.url is not None
    body = json.dumps({"interfaceAttachment": {"net_id": NET}}).encode()
    url, headers, content = signed(sim.url, "POST", iface_url(), body)
    assert headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=" + AK)
    r = await anon.post(url, headers=headers, content=content)
    assert r.status_code == 200, r.text
    port_id = r.json()["interfaceAttachment"]["port_id"]

    url, headers, _ = signed(sim.url, "GET", iface_url(), query=[("limit", 10), ("marker", "a b/c~")])
    r = await anon.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert [a["port_id"] for a in r.json()["interfaceAttachments"]] == [port_id]

    url, headers, _ = signed(sim.url, "DELETE", iface_url(port=port_id))
    assert (await anon.delete(url, headers=headers)).status_code == 202


async def test_aksk_tampering_rejected(anon: httpx.AsyncClient, sim: Simulator) -> None:
    assert sim.url is not None
    body = json.dumps({"interfaceAttachment": {"net_id": NET}}).encode()
    url, headers, content = signed(sim.url, "POST", iface_url(), body)
    # body changed after signing
    tampered = content.replace(b"}}", b', "fixed_ips": [{"ip_address": "192.168.9.9"}]}}')
    assert_iam_401(await anon.post(url, headers=headers, content=tampered))
    # signature changed
    sig = headers["Authorization"][-64:]
    bad_sig = headers["Authorization"][:-64] + ("0" if sig[0] != "0" else "1") + sig[1:]
    assert_iam_401(await anon.post(url, headers={**headers, "Authorization": bad_sig}, content=content))
    # path changed (another server)
    other = url.replace(SERVER_A, "22222222-2222-4222-8222-222222222222")
    assert_iam_401(await anon.post(other, headers=headers, content=content))
    # signed header changed
    assert_iam_401(await anon.post(url, headers={**headers, "X-Project-Id": "x" * 32}, content=content))
    # wrong secret key, unknown access key
    for ak, sk in ((AK, "wrong"), ("OTHERAK", SK)):
        u, h, c = signed(sim.url, "POST", iface_url(), body, ak=ak, sk=sk)
        assert_iam_401(await anon.post(u, headers=h, content=c))
    # correctly signed but an hour old
    old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    u, h, c = signed(sim.url, "POST", iface_url(), body, date=old)
    assert_iam_401(await anon.post(u, headers=h, content=c))
    # malformed header
    assert_iam_401(await anon.get(iface_url(), headers={"Authorization": "SDK-HMAC-SHA256 garbage"}))
    state = sim.state()
    assert state["servers"][SERVER_A] == []
    # and the untouched original still works
    assert (await anon.post(url, headers=headers, content=content)).status_code == 200
