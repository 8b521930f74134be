"""What is attached to each server, read with one list call shared by every attachment on that server.

Many attachments on one server that need a look at about the same time (following DOWN ports, drift
checks, resumes after a restart) share a single in-flight list call and a briefly cached answer, so the
cloud sees one call per server rather than one per attachment.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment

ServerKey = tuple[str, str]  # (cloud name, server ID)


@dataclass
class _View:
    at: float = 0.0
    ports: dict[str, InterfaceAttachment] = field(default_factory=dict)
    inflight: asyncio.Future[dict[str, InterfaceAttachment]] | None = None


class ServerViews:
    def __init__(self) -> None:
        self._views: dict[ServerKey, _View] = {}
        self._locks: dict[ServerKey, asyncio.Lock] = {}

    def lock(self, key: ServerKey) -> asyncio.Lock:
        """Serialises attach/detach calls per server, so two attachments cannot confuse each other."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def ports(self, client: EcsClient, key: ServerKey, max_age: float) -> dict[str, InterfaceAttachment]:
        """The server's ports by port ID, no older than max_age seconds (0: a list call started now)."""
        view = self._views.setdefault(key, _View())
        started = time.monotonic()
        if view.inflight is not None:
            # A call already under way started before us; it is fresh enough unless we demand a newer one.
            result = await asyncio.shield(view.inflight)
            if max_age > 0 or view.at >= started:
                return result
        elif view.at and started - view.at <= max_age:
            return view.ports
        future: asyncio.Future[dict[str, InterfaceAttachment]] = asyncio.get_running_loop().create_future()
        view.inflight = future
        try:
            listed = await client.list(key[1])
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            view.inflight = None
        view.ports = {p.port_id: p for p in listed}
        view.at = time.monotonic()
        future.set_result(view.ports)
        return view.ports

    def note(self, key: ServerKey, port: InterfaceAttachment) -> None:
        """Our own attach's answer, so a cached view taken before it does not look like drift."""
        view = self._views.get(key)
        if view is not None:
            view.ports = {**view.ports, port.port_id: port}

    def drop(self, key: ServerKey, port_id: str) -> None:
        view = self._views.get(key)
        if view is not None and port_id in view.ports:
            view.ports = {k: v for k, v in view.ports.items() if k != port_id}

    def forget_server(self, key: ServerKey) -> None:
        self._views.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]
