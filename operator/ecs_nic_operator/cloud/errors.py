"""Errors the cloud client raises, grouped by what the caller should do about them.

- RetryableError: try again later (the cloud is down, busy or throttling us).
- SpecError: retrying will not help until someone changes the spec or the cloud side.
- AuthError: the credentials are wrong or lack permission; retrying only burns API calls.

Huawei Cloud answers most NIC failures with HTTP 400 and an ``Ecs.xxxx`` code, and its docs warn
that the HTTP status "may not be accurate": the cloud's code decides first (``_CODES``), the
status only when the code is unknown.

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
    #: Whether the refused call may still have changed something on the cloud. False: the cloud
    #: said no before acting (busy, throttled). True: nobody knows (timeouts, lost replies, internal
    #: errors), so a create must look for its own result (list) before trying again.
    may_have_taken_effect = False

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
    """Timeout, connection failure or 5xx: the call may or may not have reached the cloud."""

    may_have_taken_effect = True


class CloudInternalError(CloudUnavailable):
    """``Ecs.1xxx`` (Huawei's internal Nova/OpenStack errors, sent as 400 or 5xx): transient, and
    the call may have taken effect before the failure."""


class ServerBusy(RetryableError):
    """The server is in a task state (Nova's 409, Huawei's 400 ``Ecs.0100``, or 501 ``Ecs.0603``
    "try again 1 minute later", which sets ``retry_after``)."""


class Throttled(RetryableError):
    """429: the API gateway's rate limit. ``retry_after`` is only set if the cloud sent a hint."""


class SpecError(CloudError):
    """The request cannot succeed as written."""


class BadRequest(SpecError):
    """400 (and any other 4xx that no more specific class describes)."""


class InvalidIp(BadRequest):
    """``Ecs.0039``: the fixed IP is not inside the network's subnet."""


class SubnetExhausted(SpecError):
    """``Ecs.0012`` (Nova: "No more IP addresses available"): the subnet has no free address."""


class ServerLocked(SpecError):
    """``Ecs.0605`` (Nova: 409 "is locked"): nothing changes until someone unlocks the server."""


class ApiNotFound(SpecError):
    """The API gateway's 404 ``APIGW.0101``: the endpoint does not serve this API (a wrong endpoint
    or region). It says nothing about the server, so it is never a ``NotFound``."""


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
    """The port or fixed IP is already in use elsewhere (Nova's 409; Huawei's 400 ``Ecs.0010`` for
    the IP, ``Ecs.0919`` for a port attached to another instance). ``what``: "ip", "port" or None
    when the cloud did not say which."""

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


class QuotaExceeded(SpecError):
    """403/413 (Huawei: 400 ``Ecs.0050``): a port, IP or NIC-per-server quota is exhausted."""


class Forbidden(SpecError):
    """403 that refuses the operation itself rather than the caller (e.g. detaching the primary NIC)."""


class AuthError(CloudError):
    """401, or a 403 that is about the caller's identity or permissions."""


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """Return (code, message) from any of the three error shapes, or from plain text.

    Nova's shape ``{"<kind>": {"message", "code": <http status>}}`` gets the kind as its code,
    since the numeric code only repeats the HTTP status.
    """
    code, message, _ = _parse_error_body(body)
    return code, message


def _parse_error_body(body: bytes) -> tuple[str | None, str | None, bool]:
    """(code, message, structured): structured is False when the body was no JSON error document
    (an HTML page, plain text, nothing), i.e. the answer may not come from the API at all."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None, None, False
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, Mapping):
        if "error_code" in doc or "error_msg" in doc:  # API gateway
            return _opt_str(doc.get("error_code")), _opt_str(doc.get("error_msg")), True
        err = doc.get("error")
        if isinstance(err, Mapping):  # ECS native (and Keystone)
            return _opt_str(err.get("code")), _opt_str(err.get("message")), True
        if len(doc) == 1:  # Nova
            kind, inner = next(iter(doc.items()))
            if isinstance(inner, Mapping) and "message" in inner:
                # Nova's numeric code repeats the status; Huawei's Nova-compatible API puts its
                # "Ecs.xxxx" there instead, which is the one worth deciding by. Neutron's
                # {"NeutronError": {"type", "message"}} names its error in "type".
                inner_code = _opt_str(inner.get("code")) or _opt_str(inner.get("type"))
                named = inner_code is not None and not inner_code.isdigit()
                return (inner_code if named else str(kind)), _opt_str(inner.get("message")), True
        for key in ("message", "msg", "error_message"):
            if isinstance(doc.get(key), str):
                return _opt_str(doc.get("code")), _opt_str(doc[key]), True
        return None, _clip(text), False
    # webob's default error pages and proxies' HTML: collapse to one short line.
    return None, _clip(re.sub(r"<[^>]+>", " ", text)), False


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


_LOCKED = re.compile(r"\bis locked\b", re.IGNORECASE)
_BUSY = re.compile(r"task_state|vm_state|while it is in|in progress|busy", re.IGNORECASE)
_IN_USE = re.compile(r"in use|already attached|already exists|in-use|inuse", re.IGNORECASE)
_NO_IPS = re.compile(r"no more (fixed )?ip|no (free|available) ip", re.IGNORECASE)
_QUOTA = re.compile(r"exceed|quota|limit", re.IGNORECASE)
_PRIMARY = re.compile(r"primary", re.IGNORECASE)
_WHAT = (
    # Checked in order: "Port X is not attached" names a port but means the attachment.
    ("interface", re.compile(r"not attached|attachment|interface", re.IGNORECASE)),
    ("server", re.compile(r"\b(instance|server|vm)\b", re.IGNORECASE)),
    ("network", re.compile(r"\b(network|net|subnet)\b", re.IGNORECASE)),
    ("port", re.compile(r"\bport\b", re.IGNORECASE)),
)

# Huawei's codes (REFERENCE.md's table), upper-cased: the class and its extra arguments. Decided
# before the HTTP status, which for these is mostly a bare 400.
_CODES: dict[str, tuple[type[CloudError], dict[str, Any]]] = {
    "ECS.0010": (InUse, {"what": "ip"}),
    "ECS.0012": (SubnetExhausted, {}),
    "ECS.0038": (NotFound, {"what": "network"}),
    "ECS.0039": (InvalidIp, {}),
    "ECS.0050": (QuotaExceeded, {}),
    "ECS.0100": (ServerBusy, {}),
    "ECS.0603": (ServerBusy, {"retry_after": 60.0}),  # "try again 1 minute later"
    "ECS.0605": (ServerLocked, {}),
    "ECS.0614": (NotFound, {"what": "server"}),
    "ECS.0919": (InUse, {"what": "port"}),
    "APIGW.0101": (ApiNotFound, {}),
    "APIGW.0301": (AuthError, {}),
    "APIGW.0308": (Throttled, {}),
    "COMMON.1503": (Throttled, {}),
    # Neutron's error types (the port API on EcsCloud spec.networkEndpoint)
    "PORTNOTFOUND": (NotFound, {"what": "port"}),
    "SECURITYGROUPNOTFOUND": (NotFound, {"what": "securityGroup"}),
    "PORTSECURITYPORTHASSECURITYGROUP": (BadRequest, {}),
    "ADDRESSPAIRANDPORTSECURITYREQUIRED": (BadRequest, {}),
}
_ECS_INTERNAL = re.compile(r"ECS\.1\d{3}")


def _guess_what(message: str | None, default: str | None) -> str | None:
    if message:
        for what, pattern in _WHAT:
            if pattern.search(message):
                return what
    return default


def _by_code(code: str | None) -> tuple[type[CloudError], dict[str, Any]] | None:
    if code is None:
        return None
    key = code.strip().upper()
    rule = _CODES.get(key)
    if rule is not None:
        return rule
    if _ECS_INTERNAL.fullmatch(key):
        return CloudInternalError, {}
    return None


def error_from_response(
    operation: str,
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    not_found_what: str | None = None,
) -> CloudError:
    """Classify a non-success response: by the cloud's code first, the HTTP status second.

    ``not_found_what`` is used when a 404 from the API names nothing; a 404 that is no API error
    document at all (a proxy's page) confirms nothing and gets ``what=None``.
    """
    code, message, structured = _parse_error_body(body)
    request_id = request_id_of(headers)
    text = message or f"HTTP {status}"
    haystack = f"{code or ''} {message or ''}"
    common: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    retry_after = parse_retry_after(headers.get("retry-after"))

    rule = _by_code(code)
    if rule is not None:
        cls, extra = rule
        kwargs = {**common, **extra}
        if issubclass(cls, RetryableError) and retry_after is not None:
            kwargs["retry_after"] = retry_after
        return cls(operation, text, **kwargs)

    lowered = haystack.lower()
    overlimit = status in (403, 413) and "rate" in lowered and "limit" in lowered  # Nova's legacy overLimit
    if status == 429 or overlimit:
        return Throttled(operation, text, retry_after=retry_after, **common)
    if status >= 500:
        return CloudUnavailable(operation, text, retry_after=retry_after, **common)
    if status in (400, 409) and _NO_IPS.search(haystack):
        return SubnetExhausted(operation, text, **common)
    if status == 400 and "quota" in lowered:  # ECS reports some quota failures as 400
        return QuotaExceeded(operation, text, **common)
    if status == 400:
        return BadRequest(operation, text, **common)
    if status == 404:
        what = _guess_what(message, not_found_what) if structured else None
        return NotFound(operation, text, what=what, **common)
    if status == 409:
        if _LOCKED.search(haystack):
            return ServerLocked(operation, text, **common)
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
