"""Logging setup: plain text for people, JSON lines for log pipelines; secrets are never passed in."""

from __future__ import annotations

import json
import logging
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # kopf attaches the object it is logging about; keep namespace/name as fields for filtering.
        for attr in ("k8s_ref", "object_ref"):
            ref = getattr(record, attr, None)
            if isinstance(ref, dict):
                entry["namespace"] = ref.get("namespace")
                entry["name"] = ref.get("name")
        for attr in ("request_id", "operation", "server_id"):
            if hasattr(record, attr):
                entry[attr] = getattr(record, attr)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf's own per-event chatter is DEBUG-worthy at 10,000 objects.
    # kopf logs "Handler ... succeeded" for every watch event: noise at 10,000 objects, kept for DEBUG.
    if root.level > logging.DEBUG:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
