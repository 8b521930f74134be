"""What the cloud client reports about its calls, to whoever wants to count them (the operator's metrics).

The client depends on this small protocol, not on the operator's metrics module, so the cloud package
imports nothing of the operator above it.
"""

from __future__ import annotations

from typing import Protocol


class CallObserver(Protocol):
    def call(self, operation: str, outcome: str, seconds: float) -> None:
        """One call ended: its operation, "ok" or the error class name, and its duration (limiter waits excluded)."""

    def waited(self, seconds: float) -> None:
        """A request waited this long for the client-side rate limit."""


class NoObserver:
    def call(self, operation: str, outcome: str, seconds: float) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass
