"""The operator's copy of every attachment, indexed by server and by port, so the questions adoption asks
("who else is on this server?", "who claims this port?") cost the few objects concerned, not a scan of all.

An attachment is filed under the server it is on or is being attached to: status.serverId (written by us,
through the status subresource), else spec.serverId, else the server its intent recorded (a nodeName
attachment whose answer was lost has only that). Whether that intent is trustworthy is for the caller to
check (reconcile/evidence.py); the index only narrows the search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from ecs_nic_operator.resources import Attachment, Key

ServerKey = tuple[str, str]  # (cloud name, server ID)


def server_of(obj: Attachment) -> str | None:
    if obj.status_server:
        return obj.status_server.lower()
    if obj.spec.server_id:
        return obj.spec.server_id.lower()
    if obj.intent is not None and obj.intent.server:
        return obj.intent.server.lower()
    return None


def _ports_of(obj: Attachment) -> set[str]:
    """Ports this object may claim: the one in its status, and the one its spec names."""
    return {p for p in (obj.port_id, obj.spec.port_id) if p}


class Store:
    def __init__(self) -> None:
        self.objects: dict[Key, Attachment] = {}
        self._by_server: dict[ServerKey, set[Key]] = defaultdict(set)
        self._by_port: dict[str, set[Key]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, key: object) -> bool:
        return key in self.objects

    def __iter__(self) -> Iterator[Key]:
        return iter(self.objects)

    def get(self, key: Key) -> Attachment | None:
        return self.objects.get(key)

    def put(self, obj: Attachment) -> Attachment | None:
        old = self.objects.get(obj.key)
        if old is not None:
            self._unindex(old)
        self.objects[obj.key] = obj
        server = server_of(obj)
        if server is not None:
            self._by_server[(obj.spec.cloud, server)].add(obj.key)
        for port in _ports_of(obj):
            self._by_port[port].add(obj.key)
        return old

    def remove(self, key: Key) -> Attachment | None:
        old = self.objects.pop(key, None)
        if old is not None:
            self._unindex(old)
        return old

    def _unindex(self, obj: Attachment) -> None:
        server = server_of(obj)
        if server is not None:
            skey = (obj.spec.cloud, server)
            keys = self._by_server.get(skey)
            if keys is not None:
                keys.discard(obj.key)
                if not keys:
                    del self._by_server[skey]
        for port in _ports_of(obj):
            keys = self._by_port.get(port)
            if keys is not None:
                keys.discard(obj.key)
                if not keys:
                    del self._by_port[port]

    def on_server(self, skey: ServerKey) -> list[Attachment]:
        return [self.objects[k] for k in self._by_server.get(skey, ())]

    def naming_port(self, port_id: str) -> list[Attachment]:
        """Attachments whose status or spec names this port, in any namespace."""
        return [self.objects[k] for k in self._by_port.get(port_id, ())]

    def servers(self) -> set[ServerKey]:
        return set(self._by_server)
