"""Errors the cloud client raises, grouped by what the caller should do about them.

- RetryableError: try again later (the cloud is down, busy or throttling us).
- SpecError: retrying will not help until someone changes the spec or the cloud side.
- AuthError: the credentials are wrong or lack permission; retrying only burns API calls.

Every error carries what the cloud said (status, code, message, request id) so that a
condition message or log line can be traced to the cloud's own logs. Nothing here ever
sees request headers, so credentials cannot leak through str(error).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

_MAX_MESSAGE = 300


class CloudError(Exception):
    def __init__(
        self,
        operation: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.operation}: {self.message}"]
        details = []
        if self.status is not None:
            details.append(f"status={self.status}")
        if self.code:
            details.append(f"code={self.code}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RetryableError(CloudError):
    def __init__(
        self,
        operation: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(operation, message, status=status, code=code, request_id=request_id)
        self.retry_after = retry_after


class CloudUnavailable(RetryableError):
    """Timeout, connection failure or 5xx."""


class ServerBusy(RetryableError):
    """409: the server is in a task state (rebooting, resizing, another NIC operation...)."""


class Throttled(RetryableError):
    """429: the API gateway's rate limit. ``retry_after`` is only set if the cloud sent a hint."""


class SpecError(CloudError):
    """The request cannot succeed as written."""


class BadRequest(SpecError):
    """400 (and any other 4xx that no more specific class describes)."""


class NotFound(SpecError):
    """404. ``what`` is a best-effort guess: "server", "network", "port", "interface" or None."""

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        what: str | None = None,
    ) -> None:
        super().__init__(operation, message, status=status, code=code, request_id=request_id)
        self.what = what


class InUse(SpecError):
    """409: the port or fixed IP is already in use elsewhere."""


class QuotaExceeded(SpecError):
    """403/413: a port, IP or NIC-per-server quota is exhausted."""


class Forbidden(SpecError):
    """403 that refuses the operation itself rather than the caller (e.g. detaching the primary NIC)."""


class AuthError(CloudError):
    """401, or a 403 that is about the caller's identity or permissions."""


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """Return (code, message) from any of the three error shapes, or from plain text.

    Nova's shape ``{"<kind>": {"message", "code": <http status>}}`` gets the kind as its code,
    since the numeric code only repeats the HTTP status.
    """
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None, None
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, Mapping):
        if "error_code" in doc or "error_msg" in doc:  # API gateway
            return _opt_str(doc.get("error_code")), _opt_str(doc.get("error_msg"))
        err = doc.get("error")
        if isinstance(err, Mapping):  # ECS native (and Keystone)
            return _opt_str(err.get("code")), _opt_str(err.get("message"))
        if len(doc) == 1:  # Nova
            kind, inner = next(iter(doc.items()))
            if isinstance(inner, Mapping) and "message" in inner:
                return str(kind), _opt_str(inner.get("message"))
        for key in ("message", "msg", "error_message"):
            if isinstance(doc.get(key), str):
                return _opt_str(doc.get("code")), _opt_str(doc[key])
        return None, _clip(text)
    # webob's default error pages and proxies' HTML: collapse to one short line.
    return None, _clip(re.sub(r"<[^>]+>", " ", text))


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return _clip(s) if s else None


def _clip(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _MAX_MESSAGE else one_line[: _MAX_MESSAGE - 3] + "..."


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or garbage."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
            return None
        seconds = when.timestamp() - now()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def request_id_of(headers: httpx.Headers) -> str | None:
    return headers.get("x-request-id") or headers.get("x-openstack-request-id") or None


_BUSY = re.compile(r"task_state|vm_state|while it is in|is locked|in progress|busy", re.IGNORECASE)
_IN_USE = re.compile(r"in use|already attached|already exists|in-use|inuse", re.IGNORECASE)
_QUOTA = re.compile(r"exceed|quota|limit", re.IGNORECASE)
_PRIMARY = re.compile(r"primary", re.IGNORECASE)
_WHAT = (
    # Checked in order: "Port X is not attached" names a port but means the attachment.
    ("interface", re.compile(r"not attached|attachment|interface", re.IGNORECASE)),
    ("server", re.compile(r"\b(instance|server|vm)\b", re.IGNORECASE)),
    ("network", re.compile(r"\b(network|net|subnet)\b", re.IGNORECASE)),
    ("port", re.compile(r"\bport\b", re.IGNORECASE)),
)


def _guess_what(message: str | None, default: str | None) -> str | None:
    if message:
        for what, pattern in _WHAT:
            if pattern.search(message):
                return what
    return default


def error_from_response(
    operation: str,
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    not_found_what: str | None = None,
) -> CloudError:
    """Classify a non-success response. ``not_found_what`` is used when a 404 names nothing."""
    code, message = parse_error_body(body)
    request_id = request_id_of(headers)
    text = message or f"HTTP {status}"
    haystack = f"{code or ''} {message or ''}"
    common: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}

    lowered = haystack.lower()
    if (
        status == 429
        or (code is not None and code.upper() == "APIGW.0308")
        or (status in (403, 413) and "rate" in lowered and "limit" in lowered)  # Nova's legacy overLimit
    ):
        return Throttled(operation, text, retry_after=parse_retry_after(headers.get("retry-after")), **common)
    if status >= 500:
        return CloudUnavailable(operation, text, retry_after=parse_retry_after(headers.get("retry-after")), **common)
    if status == 400 and "quota" in lowered:  # ECS reports some quota failures as 400
        return QuotaExceeded(operation, text, **common)
    if status == 400:
        return BadRequest(operation, text, **common)
    if status == 404:
        return NotFound(operation, text, what=_guess_what(message, not_found_what), **common)
    if status == 409:
        if _BUSY.search(haystack):
            return ServerBusy(operation, text, **common)
        if _IN_USE.search(haystack):
            return InUse(operation, text, **common)
        # An unrecognised conflict is far more likely a transient state than a spec problem,
        # and retrying a conflict with backoff is cheap.
        return ServerBusy(operation, text, **common)
    if status in (403, 413) and _QUOTA.search(haystack):
        return QuotaExceeded(operation, text, **common)
    if status == 403 and _PRIMARY.search(haystack):
        return Forbidden(operation, text, **common)
    if status in (401, 403):
        return AuthError(operation, text, **common)
    if 400 <= status < 500:
        return BadRequest(operation, text, **common)
    return CloudError(operation, f"unexpected HTTP {status}: {text}", **common)
