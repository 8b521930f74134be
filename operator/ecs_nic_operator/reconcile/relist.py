"""Reading every attachment once, before the first adoption decision, without reviving deleted ones.

Adoption weighs every other attachment's claim on a server's ports, but just after a start the watch may not
have delivered them all yet. The LIST may also answer after an object's DELETED event: a uid deleted lately
is not brought back, or it would stay as a ghost holding claims, memory and gauges.
"""

from __future__ import annotations

import asyncio
import time

from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Kube
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.resources import Attachment


class Relist:
    def __init__(self) -> None:
        self._deleted: dict[str, float] = {}  # uid -> when its DELETED event came
        self._listed = False
        self._lock = asyncio.Lock()
        self.found: list[Attachment] = []  # put in the store by the LIST: each needs a first look

    def tombstone(self, uid: str) -> None:
        now = time.monotonic()
        self._deleted[uid] = now
        if len(self._deleted) > 1000:
            self._deleted = {u: t for u, t in self._deleted.items() if now - t < 600}

    async def know_all(self, kube: Kube, settings: Settings, store: Store) -> None:
        if self._listed:
            return
        async with self._lock:
            if self._listed:
                return
            bodies, _ = await kube.list_attachments(settings.namespaces)
            for body in bodies:
                new = Attachment.from_body(body)
                if new.key not in store and new.uid not in self._deleted:
                    store.put(new)
                    self.found.append(new)  # its own watch event may now look like nothing changed
            self._listed = True

    def take_found(self) -> list[Attachment]:
        found, self.found = self.found, []
        return found
