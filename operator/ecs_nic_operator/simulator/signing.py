"""Server-side verification of Huawei Cloud ``SDK-HMAC-SHA256`` (AK/SK) request signatures.

Independent re-implementation of the canonical request of the official SDK's signer:

    canonical request = METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n
                        signed headers \\n hex(sha256(body))
    canonical URI     = each '/'-separated segment of the unquoted path percent-encoded (safe '~'),
                        with a trailing '/' appended
    canonical query   = sorted (key, value) pairs, both percent-encoded (safe '~'), joined by '&'
    canonical headers = 'name:value\\n' for each signed header (lower-cased name, trimmed value)
    string to sign    = 'SDK-HMAC-SHA256' \\n X-Sdk-Date \\n hex(sha256(canonical request))
    signature         = hex(hmac_sha256(SK, string to sign))

When the client sent ``X-Sdk-Content-Sha256`` (e.g. ``UNSIGNED-PAYLOAD``) its value replaces the body
hash, as in the SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<sh>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: list[str]
    signature: str


class SignatureError(Exception):
    """The request's AK/SK signature is missing, malformed or wrong; str() says why."""


def parse_authorization(value: str) -> ParsedAuthorization:
    m = _AUTH_RE.match(value.strip())
    if not m:
        raise SignatureError("malformed SDK-HMAC-SHA256 Authorization header")
    return ParsedAuthorization(m["ak"], m["sh"].split(";"), m["sig"].lower())


def _enc(s: str) -> str:
    return quote(s, safe="~")


def canonical_uri(raw_path: str) -> str:
    path = "/".join(_enc(seg) for seg in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """``headers`` must be keyed by lower-case name."""
    lines = []
    for name in signed_headers:
        if name not in headers:
            raise SignatureError(f"signed header {name!r} is missing from the request")
        lines.append(f"{name}:{headers[name].strip()}")
    content = headers.get("x-sdk-content-sha256")
    payload_hash = EMPTY_HASH if not body else (content or hashlib.sha256(body).hexdigest())
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def sign(secret_key: str, date: str, canonical: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    *,
    method: str,
    raw_path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    max_skew: float,
    now: datetime | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the request is correctly signed with ``access_key``."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = parse_authorization(lower.get("authorization", ""))
    if not hmac.compare_digest(auth.access_key, access_key):
        raise SignatureError("unknown access key")
    date = lower.get("x-sdk-date")
    if not date or "x-sdk-date" not in auth.signed_headers:
        raise SignatureError("X-Sdk-Date is missing or not signed")
    try:
        when = datetime.strptime(date.strip(), DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError("X-Sdk-Date is malformed") from exc
    now = now or datetime.now(UTC)
    if abs((now - when).total_seconds()) > max_skew:
        raise SignatureError("X-Sdk-Date is too far from the current time")
    canonical = canonical_request(method, raw_path, query, lower, auth.signed_headers, body)
    if not hmac.compare_digest(sign(secret_key, date.strip(), canonical), auth.signature):
        raise SignatureError("verify aksk signature fail")
