"""The HTTP transport to a cloud: TLS trust (system CAs plus an EcsCloud's ``caBundle``) and proxies.

httpx reads ``HTTPS_PROXY``/``NO_PROXY`` only for the transports it builds itself; a client given its own
transport (ours counts rate-limit tokens) ignores them. So the proxy decision is made here, per request,
with the standard library's reading of the environment (``urllib.request.getproxies_environment``) and
curl's ``NO_PROXY`` rules: ``*``, host names matching themselves and their subdomains (a leading dot is
optional), ``host:port`` entries, and IP addresses or CIDR ranges.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import ssl
import urllib.request
from collections.abc import Mapping

import httpx


class CaBundleError(ValueError):
    """``caBundle`` is not base64 of PEM certificates the TLS library accepts."""


def ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Verification on, system CAs, plus the PEM certificates in ``ca_bundle`` (base64, as in the CRD)."""
    context = ssl.create_default_context()
    if ca_bundle:
        try:
            pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise CaBundleError("spec.caBundle is not base64-encoded PEM") from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise CaBundleError("spec.caBundle holds no PEM certificate")
        try:
            context.load_verify_locations(cadata=pem)
        except ssl.SSLError as exc:
            raise CaBundleError(f"spec.caBundle: the certificates cannot be loaded ({exc.reason})") from None
    return context


class ProxyRouter(httpx.AsyncBaseTransport):
    """Sends each request direct or through the proxy the environment names for its scheme."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext,
        limits: httpx.Limits,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._verify = verify
        self._limits = limits
        self._proxies = _proxies(environ)
        self._direct = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
        self._via: dict[str, httpx.AsyncHTTPTransport] = {}

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy URL a request to ``url`` goes through, or None for a direct connection."""
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy:
            return None
        if bypassed(url.host, url.port, self._proxies.get("no", "")):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxy_for(request.url)
        if proxy is None:
            return await self._direct.handle_async_request(request)
        transport = self._via.get(proxy)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(verify=self._verify, limits=self._limits, proxy=httpx.Proxy(proxy))
            self._via[proxy] = transport
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._direct.aclose()
        for transport in self._via.values():
            await transport.aclose()


def bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host`` (``port``: the request's explicit port, if any)."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or port is None or int(entry_port) != port):
            continue
        name = name.strip("[]").lstrip(".").rstrip(".")
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def _proxies(environ: Mapping[str, str] | None) -> dict[str, str]:
    if environ is None:
        return urllib.request.getproxies_environment()
    # getproxies_environment reads os.environ only; apply its rules (lower case wins) to the given mapping.
    found: dict[str, str] = {}
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            scheme = lowered[: -len("_proxy")]
            if name == lowered or scheme not in found:
                found[scheme] = value
    return found
