"""AkSkAuth must produce exactly the Authorization header huaweicloudsdkcore's Signer does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_nic_operator.cloud.auth import AkSkAuth
from ecs_nic_operator.cloud.client import EcsClient

AK = "HPUAXXXXXXXXXXXXXXXX"
SK = "s3cr3t-SK-value-0123456789abcdefghijklmn"
PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_segment = st.one_of(
    st.text(alphabet="abcXYZ019-_.~", min_size=1, max_size=8),
    st.text(alphabet=" %?#&=+;:@!$'()*,[]{}\"<>|\\^`éü中🙂", min_size=1, max_size=6),
    _text,
)
_header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1)
_header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
_RESERVED = {
    "host",
    "x-sdk-date",
    "x-project-id",
    "x-security-token",
    "authorization",
    "content-length",
    "content-type",
    "x-sdk-content-sha256",
    # Hop-by-hop headers are never signed by AkSkAuth; an SDK request would not carry them either.
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_headers = st.dictionaries(_header_name.filter(lambda n: n.lower() not in _RESERVED), _header_value, max_size=5).filter(
    lambda d: len({k.lower() for k in d}) == len(d)
)
_body = st.one_of(
    st.just(b""),
    st.dictionaries(_text, st.one_of(_text, st.integers(), st.none())).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8")
    ),
    st.binary(max_size=64),
)
_content_type = st.sampled_from(
    [None, "application/json", "application/json;charset=UTF-8", "text/plain", "application/octet-stream"]
)
_when = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def _oracle(
    request: httpx.Request,
    *,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    security_token: str | None,
) -> str:
    """What the official SDK signs for the same logical request."""
    header_params = dict(headers)
    header_params["Host"] = request.url.netloc.decode("ascii")
    header_params["X-Sdk-Date"] = request.headers["X-Sdk-Date"]
    sdk_request = SdkRequest(
        method=request.method,
        schema=request.url.scheme,
        host=request.url.netloc.decode("ascii"),
        # The path as it goes on the wire (the SDK decodes and re-encodes it).
        resource_path=request.url.raw_path.decode("ascii").split("?", 1)[0],
        query_params=list(query),
        header_params=header_params,
        body=body,
    )
    credentials = BasicCredentials(AK, SK, PROJECT)
    if security_token is not None:
        credentials = credentials.with_security_token(security_token)
    signed = credentials.sign_request(sdk_request)
    return str(signed.header_params["Authorization"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "post"]),
    segments=st.lists(_segment, max_size=5),
    trailing_slash=st.booleans(),
    query=st.lists(st.tuples(_text, _text), max_size=6).flatmap(
        # Repeated keys (with the same or different values) are the interesting case.
        lambda q: st.just([*q, (q[0][0], "")] if q else q)
    ),
    headers=_headers,
    body=_body,
    content_type=_content_type,
    security_token=st.one_of(st.none(), st.text(alphabet="abcXYZ0123+/=", min_size=1, max_size=30)),
    when=_when,
    port=st.sampled_from([None, 443, 8443]),
)
def test_authorization_matches_official_signer(
    method: str,
    segments: list[str],
    trailing_slash: bool,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    content_type: str | None,
    security_token: str | None,
    when: datetime,
    port: int | None,
) -> None:
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    if trailing_slash and not path.endswith("/"):
        path += "/"
    netloc = "ecs.ap-southeast-1.myhuaweicloud.com" + (f":{port}" if port else "")
    all_headers = dict(headers)
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    params: list[tuple[str, str | int | float | bool | None]] = list(query)
    request = httpx.Request(method, f"https://{netloc}{path}", params=params, headers=all_headers, content=body or None)
    auth = AkSkAuth(AK, SK, PROJECT, security_token, clock=lambda: when)
    flow = auth.sync_auth_flow(request)
    sent = next(flow)

    expected = _oracle(sent, query=query, headers=all_headers, body=body, security_token=security_token)
    assert sent.headers["Authorization"] == expected
    assert sent.headers["X-Sdk-Date"] == when.strftime("%Y%m%dT%H%M%SZ")
    assert sent.headers["X-Project-Id"] == PROJECT


def test_known_vector() -> None:
    """A fixed example, so a change to both sides at once (e.g. a library bump) is noticed."""
    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    request = httpx.Request(
        "POST",
        f"https://ecs.ap-southeast-1.myhuaweicloud.com/v2.1/{PROJECT}/servers/s1/os-interface",
        json={"interfaceAttachment": {"net_id": "n1"}},
    )
    sent = next(AkSkAuth(AK, SK, PROJECT, clock=lambda: when).sync_auth_flow(request))
    assert sent.headers["Authorization"].startswith(
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature="
    )
    assert sent.headers["Authorization"] == _oracle(
        sent,
        query=[],
        headers={"Content-Type": "application/json"},
        body=sent.content,
        security_token=None,
    )


def _official_verifier(secrets: dict[str, str]) -> httpx.MockTransport:
    """A fake gateway that recomputes the signature with the official Signer and returns 401 on mismatch."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        auth = request.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(","))
        if algorithm != "SDK-HMAC-SHA256" or fields.get("Access") not in secrets:
            return httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "bad auth"})
        signed_names = fields["SignedHeaders"].split(";")
        header_params = {name: request.headers[name] for name in signed_names}
        sdk_request = SdkRequest(
            method=request.method,
            schema=request.url.scheme,
            host=request.url.netloc.decode("ascii"),
            resource_path=request.url.raw_path.decode("ascii").split("?", 1)[0],
            query_params=list(request.url.params.multi_items()),
            header_params=header_params,
            body=request.content,
        )
        creds = BasicCredentials(fields["Access"], secrets[fields["Access"]])
        recomputed = Signer(creds).sign(sdk_request).header_params["Authorization"]
        if recomputed != auth:
            return httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "signature mismatch"})
        if request.method == "POST":
            return httpx.Response(
                200,
                json={
                    "interfaceAttachment": {
                        "port_id": "p1",
                        "net_id": "n1",
                        "mac_addr": "fa:16:3e:00:00:01",
                        "port_state": "BUILD",
                        "fixed_ips": [{"subnet_id": "sn1", "ip_address": "192.168.1.3"}],
                    }
                },
            )
        return httpx.Response(200, json={"interfaceAttachments": []})

    transport = httpx.MockTransport(handler)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


async def test_official_verifier_accepts_client_requests() -> None:
    transport = _official_verifier({AK: SK})
    auth = AkSkAuth(AK, SK, PROJECT, security_token="sts-token")
    async with EcsClient("https://ecs.ap-southeast-1.myhuaweicloud.com", PROJECT, auth, transport=transport) as client:
        att = await client.attach("s1", net_id="n1", fixed_ip="192.168.1.3")
        assert att.port_id == "p1"
        assert await client.list("s1") == []
    seen: list[httpx.Request] = transport.seen  # type: ignore[attr-defined]
    assert len(seen) == 2
    signed = seen[0].headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-sdk-date", "x-project-id", "x-security-token", "content-type"} <= set(signed)


async def test_official_verifier_rejects_wrong_secret() -> None:
    from ecs_nic_operator.cloud.errors import AuthError

    transport = _official_verifier({AK: "another-secret"})
    async with EcsClient("https://ecs.example.com", PROJECT, AkSkAuth(AK, SK, PROJECT), transport=transport) as client:
        with pytest.raises(AuthError) as info:
            await client.list("s1")
    assert SK not in str(info.value)
    assert info.value.code == "APIGW.0301"
