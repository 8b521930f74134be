"""httpx ``Auth`` implementations for the three EcsCloud credential types.

None of these classes keeps a secret in anything that is printed: ``repr`` shows only
non-secret identifiers, and errors raised here never include request headers or bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from ecs_nic_operator.cloud.errors import AuthError, error_from_response
from ecs_nic_operator.cloud.urls import require_secure_url

log = logging.getLogger("ecs_nic_operator.cloud")

_ALGORITHM = "SDK-HMAC-SHA256"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CONTENT_SHA256 = "x-sdk-content-sha256"
# Headers a proxy or the connection layer may add, drop or rewrite: signing them would make
# the signature fragile without protecting anything the server acts on.
_UNSIGNED = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class CredentialsError(ValueError):
    """The credentials Secret is unusable; the message names keys, never values."""


def _uri_encode(s: str) -> str:
    # The SDK's rule: everything but unreserved characters is escaped, including "/".
    return quote(s, safe="~")


def _canonical_uri(path: str) -> str:
    # ``path`` is already percent-decoded (httpx.URL.path), which is what the SDK signs:
    # it decodes the resource path and re-encodes each segment.
    encoded = "/".join(_uri_encode(segment) for segment in path.split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def _canonical_query(params: httpx.QueryParams) -> str:
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params.multi_items()))


def _header_text(raw: bytes) -> str:
    # The SDK sends non-ASCII header values as UTF-8 and signs the decoded text.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class AkSkAuth(httpx.Auth):
    """Huawei Cloud ``SDK-HMAC-SHA256`` request signing (access key / secret key).

    Produces the same Authorization header as ``huaweicloudsdkcore``'s ``Signer`` for the
    same method, path, query, headers and body. Every header on the request is signed except
    hop-by-hop ones, ``Content-Length`` and names containing ``_`` (the SDK skips those).
    """

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        project_id: str,
        security_token: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not access_key or not secret_key:
            raise CredentialsError("access key and secret key must both be non-empty")
        self.access_key = access_key
        self._secret_key = secret_key.encode("utf-8")
        self.project_id = project_id
        self._security_token = security_token
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        # The access key identifies the credential without granting anything; show a prefix only.
        return (
            f"AkSkAuth(access_key={self.access_key[:4]}..., project_id={self.project_id!r}, "
            f"security_token={'set' if self._security_token else 'unset'})"
        )

    def sign(self, request: httpx.Request) -> None:
        """Add the signing headers and Authorization to ``request`` in place."""
        request.headers["X-Sdk-Date"] = self._clock().astimezone(UTC).strftime(_DATE_FORMAT)
        if "host" not in request.headers:
            request.headers["Host"] = request.url.netloc.decode("ascii")
        if self.project_id:
            request.headers["X-Project-Id"] = self.project_id
        if self._security_token is not None:
            request.headers["X-Security-Token"] = self._security_token
        content_type = request.headers.get("content-type")
        if (
            content_type
            and not content_type.startswith("application/json")
            and not content_type.startswith("application/bson")
        ):
            # The SDK's convention for bodies it does not hash (uploads): the gateway then
            # verifies the headers only.
            request.headers["X-Sdk-Content-Sha256"] = "UNSIGNED-PAYLOAD"
        request.headers.pop("authorization", None)

        if any(v != v.strip() for _, v in request.headers.raw):
            # The signature covers trimmed values; send them trimmed too so the server agrees.
            request.headers = httpx.Headers([(k, v.strip()) for k, v in request.headers.raw])
        values: dict[str, str] = {}
        for raw_name, raw_value in request.headers.raw:
            name = raw_name.decode("latin-1").lower()
            if "_" in name or name in _UNSIGNED:
                continue
            value = _header_text(raw_value)
            values[name] = f"{values[name]},{value}" if name in values else value
        signed = sorted(values)
        canonical_headers = "".join(f"{name}:{values[name]}\n" for name in signed)
        signed_list = ";".join(signed)

        body = request.content
        payload_hash = (values.get(_CONTENT_SHA256) or hashlib.sha256(body).hexdigest()) if body else _EMPTY_SHA256

        canonical_request = "\n".join(
            (
                request.method.upper(),
                _canonical_uri(request.url.path),
                _canonical_query(request.url.params),
                canonical_headers,
                signed_list,
                payload_hash,
            )
        )
        string_to_sign = "\n".join(
            (
                _ALGORITHM,
                request.headers["X-Sdk-Date"],
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            )
        )
        signature = hmac.new(self._secret_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"{_ALGORITHM} Access={self.access_key}, SignedHeaders={signed_list}, Signature={signature}"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


class TokenAuth(httpx.Auth):
    """A pre-issued IAM/Keystone token, sent as ``X-Auth-Token``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise CredentialsError("token must be non-empty")
        self._token = token

    def __repr__(self) -> str:
        return "TokenAuth(token=<redacted>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = self._token
        yield request


class KeystonePasswordAuth(httpx.Auth):
    """Keystone v3 password login, project-scoped, with a cached token renewed before expiry.

    The token request is yielded from the auth flow, so it travels through the same
    ``httpx.AsyncClient`` (and transport) as the API calls. One ``asyncio.Lock`` makes
    concurrent requests share one login. A 401 from the API means the token was revoked or
    expired early: log in again and resend once.
    """

    requires_response_body = True

    # Tokens normally last 24 h; if the response does not say, assume a short life and renew early.
    _DEFAULT_LIFETIME = 3600.0
    _MAX_MARGIN = 600.0

    def __init__(
        self,
        auth_url: str,
        username: str,
        password: str,
        domain_name: str,
        project_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for key, value in (("username", username), ("password", password), ("domain name", domain_name)):
            if not value:
                raise CredentialsError(f"{key} must be non-empty")
        base = require_secure_url(auth_url, "Keystone auth URL")
        path = base.path.rstrip("/")
        if path.endswith("/v3"):  # accept both ".../v3" and the bare endpoint
            path = path[: -len("/v3")]
        self.token_url = base.copy_with(path=f"{path}/v3/auth/tokens")
        self.username = username
        self._password = password
        self.domain_name = domain_name
        self.project_id = project_id
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0  # for metrics and tests: how many tokens were fetched

    def __repr__(self) -> str:
        return (
            f"KeystonePasswordAuth(token_url={str(self.token_url)!r}, username={self.username!r}, "
            f"domain_name={self.domain_name!r}, project_id={self.project_id!r}, password=<redacted>)"
        )

    def _token_request(self) -> httpx.Request:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "password": self._password,
                            "domain": {"name": self.domain_name},
                        }
                    },
                },
                "scope": {"project": {"id": self.project_id}},
            }
        }
        return httpx.Request(
            "POST",
            self.token_url,
            content=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def _accept_token(self, response: httpx.Response) -> None:
        if response.status_code not in (200, 201):
            err = error_from_response("keystone_auth", response.status_code, response.headers, response.content)
            if response.status_code in (401, 403) and not isinstance(err, AuthError):
                err = AuthError(
                    "keystone_auth", err.message, status=err.status, code=err.code, request_id=err.request_id
                )
            raise err
        token = response.headers.get("x-subject-token")
        if not token:
            raise AuthError("keystone_auth", "login response has no X-Subject-Token", status=response.status_code)
        now = self._clock()
        expires_at = _parse_expiry(response.content)
        lifetime = (expires_at - now) if expires_at is not None else self._DEFAULT_LIFETIME
        if lifetime <= 0:
            raise AuthError("keystone_auth", "Keystone issued a token that has already expired (clock skew?)")
        self._token = token
        self._renew_at = now + lifetime - min(self._MAX_MARGIN, lifetime * 0.1)
        self.logins += 1
        log.debug("keystone login ok for user %s, token valid %.0fs", self.username, lifetime)

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after the credentials Secret changed)."""
        self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("KeystonePasswordAuth works only with httpx.AsyncClient")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                login = yield self._token_request()
                # Overriding async_auth_flow bypasses httpx's requires_response_body handling: read it here.
                await login.aread()
                self._accept_token(login)
            token = self._token
        assert token is not None
        request.headers["X-Auth-Token"] = token
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            # Another request may already have logged in again after the same 401.
            if self._token == token:
                self._token = None
                login = yield self._token_request()
                await login.aread()
                self._accept_token(login)
            token = self._token
        assert token is not None
        request.headers["X-Auth-Token"] = token
        yield request


def _parse_expiry(body: bytes) -> float | None:
    try:
        doc = json.loads(body)
        value = doc["token"]["expires_at"]
        when = datetime.fromisoformat(str(value))
    except (ValueError, KeyError, TypeError):
        return None
    if when.tzinfo is None:  # Keystone's timestamps are UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _require(data: Mapping[str, str], cred_type: str, key: str) -> str:
    value = data.get(key)
    if value is None:
        raise CredentialsError(f"{cred_type} credentials Secret has no key {key!r}")
    # Secrets written with `echo` carry a trailing newline that would corrupt a signature.
    value = value.strip()
    if not value:
        raise CredentialsError(f"{cred_type} credentials Secret key {key!r} is empty")
    return value


def credentials_renew_in(data: Mapping[str, str], now: float) -> float | None:
    """Seconds until temporary credentials should be read again, from the Secret's optional ``expiresAt``
    (RFC 3339, as Huawei's security-token API's ``expires_at``): a tenth of the remaining life (at most
    10 min) before it, never sooner than 5 s so an expired Secret cannot cause a hot loop. None: no expiry."""
    raw = (data.get("expiresAt") or "").strip()
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CredentialsError("credentials Secret key 'expiresAt' is not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    left = when.timestamp() - now
    return max(5.0, left - min(600.0, left * 0.1))


def auth_from_secret(cred_type: str, data: Mapping[str, str], project_id: str) -> httpx.Auth:
    """Build the Auth for an EcsCloud ``credentials.type`` from the decoded Secret data."""
    if cred_type == "AKSK":
        token = data.get("securityToken")
        return AkSkAuth(
            _require(data, cred_type, "accessKey"),
            _require(data, cred_type, "secretKey"),
            project_id,
            security_token=token.strip() if token and token.strip() else None,
        )
    if cred_type == "Token":
        return TokenAuth(_require(data, cred_type, "token"))
    if cred_type == "Password":
        try:
            return KeystonePasswordAuth(
                _require(data, cred_type, "authUrl"),
                _require(data, cred_type, "username"),
                _require(data, cred_type, "password"),
                _require(data, cred_type, "domainName"),
                project_id,
            )
        except CredentialsError:
            raise
        except ValueError as exc:
            raise CredentialsError(f"Password credentials: {exc}") from None
    raise CredentialsError(f"unknown credentials type {cred_type!r} (expected AKSK, Token or Password)")


__all__ = [
    "AkSkAuth",
    "CredentialsError",
    "KeystonePasswordAuth",
    "TokenAuth",
    "auth_from_secret",
    "credentials_renew_in",
]
