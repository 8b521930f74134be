"""Logging setup: plain text for people, JSON lines for log pipelines; secrets never reach either.

Secrets are not passed to loggers in the first place (the auth classes' reprs redact them); as a second
line of defence both formatters scrub anything that looks like a credential (``password=...``,
``"secretKey": "..."``, ``X-Auth-Token: ...``, an ``Authorization`` header, an AK/SK ``Signature=``) from the
message and from tracebacks, and the JSON formatter emits only a fixed set of record attributes, never
arbitrary ``extra=`` fields.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

REDACTED = "<redacted>"

# key = value, key: value, "key": "value", 'key': 'value' — for every key that names a credential.
_SECRET_KEYS = (
    r"password|passwd|secret[_-]?key|secretkey|secret|security[_-]?token|securitytoken|token|"
    r"x-auth-token|x-subject-token|authorization|access[_-]?token|api[_-]?key|credentials?"
)
_SECRET_VALUE = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:"""
    + _SECRET_KEYS
    + r""")\b["']?\s*[:=]\s*)
    (?P<value>
        "(?:[^"\\]|\\.)*"          # a double-quoted value
      | '(?:[^'\\]|\\.)*'          # a single-quoted value
      | (?:SDK-HMAC-SHA256|Bearer|Basic)\s+[^\n]*   # an Authorization header: everything after the scheme
      | [^\s,;}\])]+               # a bare value
    )
    """
)
_SIGNATURE = re.compile(r"(?i)(Signature=)[0-9a-f]+")
_REQUEST_ID = re.compile(r"\brequest[_-]id[=:]\s*([A-Za-z0-9._-]+)")
# Controller messages start with "namespace/name: ..." or mention "of namespace/name".
_OBJECT = re.compile(r"^(?:reconcile of )?([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)[: ]")


def scrub(text: str) -> str:
    """Replace credential values in free text; keys stay so the line still says what was there."""

    def hide(match: re.Match[str]) -> str:
        value = match.group("value")
        if value.startswith(("'", '"')):
            return f"{match.group('key')}{value[0]}{REDACTED}{value[0]}"
        if value.lower() in ("none", "null", "<redacted>", "set", "unset"):
            return match.group(0)
        return f"{match.group('key')}{REDACTED}"

    return _SIGNATURE.sub(rf"\1{REDACTED}", _SECRET_VALUE.sub(hide, text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and namespace/name/request_id where known."""

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        # kopf attaches the object it is logging about; keep namespace/name as fields for filtering.
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            if ref.get("namespace"):
                entry["namespace"] = ref.get("namespace")
            entry["name"] = ref.get("name")
        # (record.name is the logger's name: callers pass the object as extra={"k8s_ref": {...}} instead.)
        if "name" not in entry:
            found = _OBJECT.match(message)
            if found:
                entry["namespace"], entry["name"] = found.group(1), found.group(3)
        # Cloud request ids: from the record when the caller passed one, else from the message
        # ("request_id=..." is how the cloud client and CloudError render it).
        request_id = getattr(record, "request_id", None)
        if not request_id:
            found_id = _REQUEST_ID.search(message)
            request_id = found_id.group(1) if found_id else None
        if request_id and request_id != "None":
            entry["request_id"] = str(request_id)
        for attr in ("operation", "server_id"):
            value = getattr(record, attr, None)
            if isinstance(value, str | int | float):
                entry[attr] = scrub(str(value))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf's own per-event chatter is DEBUG-worthy at 10,000 objects.
    logging.getLogger("kopf").setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    # Above all its "Handler 'attachment_event' succeeded." for every watch event (two lines per event).
    logging.getLogger("kopf.objects").setLevel(max(logging.getLevelName(level.upper()), logging.WARNING))
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
