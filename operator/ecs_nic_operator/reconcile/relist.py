"""Reading every attachment once, before the first adoption decision, without reviving deleted ones.

Adoption weighs every other attachment's claim on a server's ports, but just after a start the watch may not
have delivered them all yet. The LIST may also answer after an object's DELETED event: a uid deleted lately
is not brought back, or it would stay as a ghost holding claims, memory and gauges.

kopf itself re-lists after a 410 (a watch resumed from a revision the API server no longer has) and sends no
DELETED event for what was deleted meanwhile: after such a re-list, ``ghosts`` lists once more and names the
copies that LIST no longer shows.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ecs_nic_operator.config import Settings
from ecs_nic_operator.kube import Kube
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.resources import Attachment, Key

log = logging.getLogger("ecs_nic_operator.controller")


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

    async def ghosts(self, kube: Kube, settings: Settings, store: Store) -> list[Key]:
        """Copies older than a fresh LIST that the LIST does not show: deleted while the watch was down. A
        copy newer than the LIST was created after it and stays."""
        try:
            bodies, version = await kube.list_attachments(settings.namespaces)
        except Exception:
            log.exception("listing attachments after a re-list failed; ghosts stay until the next re-list")
            return []
        listed = {(b.get("metadata") or {}).get("uid") for b in bodies}
        gone: list[Key] = []
        for key, obj in list(store.objects.items()):
            if obj.uid not in listed and version and int(obj.resource_version or 0) <= int(version):
                log.info("%s/%s was deleted while the watch was down: forgotten", *key)
                self.tombstone(obj.uid)
                gone.append(key)
        return gone
