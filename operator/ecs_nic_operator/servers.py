"""What is attached to each server, read with one list call shared by every attachment on that server.

Many attachments on one server that need a look at about the same time (following DOWN ports, drift
checks, resumes after a restart) share a single in-flight list call and a briefly cached answer, so the
cloud sees one call per server rather than one per attachment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment

ServerKey = tuple[str, str]  # (cloud name, server ID)


@dataclass
class _View:
    # When the list call that produced ``ports`` was *sent*: a list sent before an attach cannot show it,
    # however late its answer comes, so freshness is measured from the sending.
    at: float = 0.0
    ports: dict[str, InterfaceAttachment] = field(default_factory=dict)
    inflight: asyncio.Future[dict[str, InterfaceAttachment]] | None = None
    inflight_sent: float = 0.0
    # Ports our own attaches created, with when: a list sent before that moment cannot show them yet.
    noted: dict[str, tuple[float, InterfaceAttachment]] = field(default_factory=dict)


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

    async def ports(
        self,
        client: EcsClient,
        key: ServerKey,
        max_age: float,
        fetch: Callable[[], Awaitable[list[InterfaceAttachment]]] | None = None,
    ) -> dict[str, InterfaceAttachment]:
        """The server's ports by port ID, no older than max_age seconds (0: a list call started now). fetch:
        how to list them if a call is needed (the v2.1 list by default)."""
        view = self._views.setdefault(key, _View())
        started = time.monotonic()
        while view.inflight is not None:
            # A call already under way: its answer is fresh enough unless it was sent too long before now.
            sent, inflight = view.inflight_sent, view.inflight
            result = await asyncio.shield(inflight)
            if started - sent <= max_age:
                return result
        if view.at and started - view.at <= max_age:
            return view.ports
        future: asyncio.Future[dict[str, InterfaceAttachment]] = asyncio.get_running_loop().create_future()
        view.inflight, view.inflight_sent = future, time.monotonic()
        try:
            listed = await (fetch() if fetch is not None else client.list(key[1]))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            if view.inflight is future:
                view.inflight = None
        sent = view.inflight_sent
        result = {p.port_id: p for p in listed}
        for port_id, (noted_at, port) in list(view.noted.items()):
            if noted_at < sent:
                del view.noted[port_id]  # this list was sent after our attach: it is the truth now
            else:
                result.setdefault(port_id, port)
        if sent >= view.at:  # never let an older list's late answer replace a newer one
            view.ports = result
            view.at = sent
        future.set_result(result)
        return result

    def cached(self, key: ServerKey, max_age: float) -> dict[str, InterfaceAttachment]:
        """The last listed ports if that list was sent within max_age seconds, else nothing; never calls."""
        return self.listed_since(key, time.monotonic() - max_age) or {}

    def listed_since(self, key: ServerKey, moment: float) -> dict[str, InterfaceAttachment] | None:
        """The last listed ports if that list was sent at or after moment (monotonic), else None; never calls."""
        view = self._views.get(key)
        if view is None or not view.at or view.at < moment:
            return None
        return view.ports

    def note(self, key: ServerKey, port: InterfaceAttachment) -> None:
        """Our own attach's answer, so a cached view taken before it does not look like drift."""
        view = self._views.setdefault(key, _View())
        view.ports = {**view.ports, port.port_id: port}
        view.noted[port.port_id] = (time.monotonic(), port)

    def drop(self, key: ServerKey, port_id: str) -> None:
        view = self._views.get(key)
        if view is not None:
            view.noted.pop(port_id, None)
            if port_id in view.ports:
                view.ports = {k: v for k, v in view.ports.items() if k != port_id}

    def forget_server(self, key: ServerKey) -> None:
        self._views.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]
