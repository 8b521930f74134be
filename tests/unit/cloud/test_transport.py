"""Private and proxied clouds: HTTP(S)_PROXY / NO_PROXY are honoured although the client brings its own transport,
and an EcsCloud's caBundle is what makes a private CA's certificate trusted."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ecs_nic_operator.cloud import errors as E
from ecs_nic_operator.cloud.auth import TokenAuth
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.transport import CaBundleError, ProxyRouter, bypassed, ssl_context
from ecs_nic_operator.simulator import Simulator
from tests.unit.simulator.conftest import PROJECT, SERVER_B, TOKEN, make_seed, running


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests, one per connection) that records what it relayed."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, version = head[0].split(" ")
        self.seen.append(f"{method} {target}")
        url = httpx.URL(target)
        lines = [h for h in head[1:] if h and not h.lower().startswith(("connection:", "proxy-"))]
        length = next((int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
        path = url.raw_path.decode("ascii")
        request_head = "\r\n".join([f"{method} {path} {version}", *lines, "Connection: close", "", ""])
        up_writer.write(request_head.encode("latin-1"))
        up_writer.write(body)
        await up_writer.drain()
        writer.write(await up_reader.read())
        await writer.drain()
        up_writer.close()
        writer.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running(make_seed(dialect="huawei")) as s:
        yield s


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    p = ForwardProxy()
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def test_http_proxy_from_the_environment_is_used(
    sim: Simulator, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert sim.url is not None
    async with EcsClient(sim.url, PROJECT, TokenAuth(TOKEN)) as client:
        assert await client.list(SERVER_B) == []
    assert proxy.seen == [f"GET {sim.url}/v2.1/{PROJECT}/servers/{SERVER_B}/os-interface"]

    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with EcsClient(sim.url, PROJECT, TokenAuth(TOKEN)) as client:
        assert await client.list(SERVER_B) == []
    assert len(proxy.seen) == 1  # NO_PROXY: straight to the cloud


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("ecs.example.com", None, "", False),
        ("ecs.example.com", None, "*", True),
        ("ecs.example.com", None, "example.com", True),
        ("ecs.example.com", None, ".example.com", True),
        ("badexample.com", None, "example.com", False),
        ("ecs.example.com", 8443, "ecs.example.com:8443", True),
        ("ecs.example.com", 443, "ecs.example.com:8443", False),
        ("10.1.2.3", None, "10.0.0.0/8", True),
        ("10.1.2.3", None, "192.168.0.0/16, 10.1.2.3", True),
        ("::1", None, "::1", True),
        ("172.16.0.1", None, "10.0.0.0/8,example.com", False),
    ],
)
def test_no_proxy_rules(host: str, port: int | None, no_proxy: str, bypass: bool) -> None:
    assert bypassed(host, port, no_proxy) is bypass


def test_proxy_choice_by_scheme_and_lower_case_wins() -> None:
    router = ProxyRouter(
        verify=ssl_context(),
        limits=httpx.Limits(),
        environ={"HTTPS_PROXY": "http://upper:3128", "https_proxy": "proxy.corp:3128", "NO_PROXY": "internal"},
    )
    assert router.proxy_for(httpx.URL("https://ecs.example.com/v2.1/")) == "http://proxy.corp:3128"
    assert router.proxy_for(httpx.URL("http://ecs.example.com/v2.1/")) is None  # no HTTP_PROXY
    assert router.proxy_for(httpx.URL("https://ecs.internal/v2.1/")) is None


# -- caBundle ------------------------------------------------------------------------------------------


def _private_ca(tmp: Path) -> tuple[bytes, ssl.SSLContext]:
    """A CA of our own and a server certificate for 127.0.0.1 it signed: (CA PEM, server TLS context)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecs-nic test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    return ca.public_bytes(serialization.Encoding.PEM), server


async def test_ca_bundle_makes_a_private_ca_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    ca_pem, server_tls = _private_ca(tmp_path)
    sim = Simulator(make_seed(dialect="huawei"))
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    endpoint = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with EcsClient(endpoint, PROJECT, TokenAuth(TOKEN)) as client:
            with pytest.raises(E.CloudUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                await client.list(SERVER_B)
        bundle = base64.b64encode(ca_pem).decode()
        async with EcsClient(endpoint, PROJECT, TokenAuth(TOKEN), ca_bundle=bundle) as client:
            assert await client.list(SERVER_B) == []
            assert await client.attachable_nics(SERVER_B) == 12
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("bundle", ["not base64!", base64.b64encode(b"no certificate here").decode()])
def test_an_unusable_ca_bundle_is_refused_with_a_clear_message(bundle: str) -> None:
    with pytest.raises(CaBundleError, match=r"spec\.caBundle"):
        ssl_context(bundle)
