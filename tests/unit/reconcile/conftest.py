"""kopf posts Events only inside a running operator: the reconcile tests record them instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kopf
import pytest


@pytest.fixture(autouse=True)
def posted_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    posted: list[tuple[str, str]] = []

    def post(kind: str) -> Any:
        def record(obj: Any, *, reason: str, message: str = "", **_: Any) -> None:
            posted.append((kind, reason))

        return record

    monkeypatch.setattr(kopf, "warn", post("Warning"))
    monkeypatch.setattr(kopf, "info", post("Normal"))
    yield posted
