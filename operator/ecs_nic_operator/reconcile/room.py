"""How many more NICs each server can take, as the cloud last said, kept current by our own attaches and detaches.

Asking before every POST would add a call per attachment. A server's attaches are serialised under its lock and
each one's answer is counted here before the next, so one count read per server serves a whole wave: a count
that is a little high costs at most the cloud's own quota refusal (which still applies), and one that would
block an attach is read again first (``RECHECK_MAX_AGE``), so a NIC detached by hand is seen. A cloud without
the API (upstream OpenStack answers 404), or credentials not allowed to read it, is remembered and not asked
again. The count only spares a POST the cloud would refuse: when it cannot be read, the attach goes ahead.
"""

from __future__ import annotations

import logging
import time

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.resources import CloudSpec

# How old a count may be to let an attach go without asking again (our own attaches and detaches keep it current).
ROOM_MAX_AGE = 300.0
# How old a count may be to block an attach: blocked attachments on one server that look together share a read.
RECHECK_MAX_AGE = 5.0

log = logging.getLogger("ecs_nic_operator.room")

CloudId = tuple[str, str, str]  # EcsCloud name, endpoint, project: a recreated EcsCloud may be another cloud


def cloud_id(spec: CloudSpec) -> CloudId:
    return (spec.name, spec.endpoint, spec.project_id)


class Room:
    def __init__(self) -> None:
        self._free: dict[ServerKey, tuple[float, int]] = {}  # when the cloud was asked, free NICs now
        self._unknown: set[CloudId] = set()  # clouds that have no attachable-count API
        self._no_combined: set[CloudId] = set()  # clouds whose v1 list does not answer the count

    async def free(self, client: EcsClient, cloud: CloudId, skey: ServerKey, max_age: float) -> int | None:
        """Free NIC slots on the server (None: the cloud does not tell), from a count no older than max_age."""
        if cloud in self._unknown:
            return None
        cached = self._free.get(skey)
        asked = time.monotonic()
        if cached is not None and asked - cached[0] <= max_age:
            return cached[1]
        try:
            free = await client.attachable_nics(skey[1])
        except errors.NotFound:
            raise  # the server itself is missing: the attach would say the same
        except errors.AuthError as exc:
            # An IAM policy may allow the attach and not this read: attach without the count from now on.
            log.warning("EcsCloud %r: cannot read attachable NIC counts (%s); attaching without them", cloud[0], exc)
            self._unknown.add(cloud)
            return None
        except errors.CloudError as exc:
            log.info("server %s: attachable NIC count unavailable (%s); attaching without it", skey[1], exc)
            return None
        if free is None:
            self._unknown.add(cloud)
            self._free.pop(skey, None)
            return None
        self._free[skey] = (asked, free)
        return free

    def stale(self, cloud: CloudId, skey: ServerKey, max_age: float) -> bool:
        """free() would ask the cloud now, and the v1 list could answer it (see list_counting)."""
        cached = self._free.get(skey)
        fresh = cached is not None and time.monotonic() - cached[0] <= max_age
        return not fresh and cloud not in self._unknown and cloud not in self._no_combined

    async def list_counting(self, client: EcsClient, cloud: CloudId, skey: ServerKey) -> list[InterfaceAttachment]:
        """The server's NICs, and its free count on the way where one call answers both (Huawei's v1 list): an
        attach that needs a baseline list and a count then costs one call, not two. Where the v1 list cannot
        (no v1 API, an IAM policy allowing only the count's own call, no count in the answer) the cloud is
        remembered, this list is the v2.1 one, and free() asks for the count alone as before."""
        if cloud not in self._no_combined:
            asked = time.monotonic()
            try:
                both = await client.list_with_room(skey[1])
            except errors.NotFound:
                raise
            except errors.AuthError as exc:
                log.info("EcsCloud %r: the v1 NIC list is refused (%s); counting NICs apart", cloud[0], exc)
                self._no_combined.add(cloud)
            except errors.CloudError as exc:
                log.info("server %s: v1 NIC list unavailable (%s); listing without it", skey[1], exc)
            else:
                if both is not None and both[1] is not None:
                    self._free[skey] = (asked, both[1])
                    return both[0]
                self._no_combined.add(cloud)
                if both is not None:
                    return both[0]
        return await client.list(skey[1])

    def took(self, skey: ServerKey) -> None:
        """One of our attaches took a slot."""
        self._add(skey, -1)

    def freed(self, skey: ServerKey) -> None:
        """One of our detaches finished (the port is no longer listed)."""
        self._add(skey, 1)

    def forget(self, skey: ServerKey) -> None:
        """Nothing known any more (an attach whose answer was lost may or may not have taken a slot)."""
        self._free.pop(skey, None)

    def _add(self, skey: ServerKey, delta: int) -> None:
        cached = self._free.get(skey)
        if cached is not None:
            self._free[skey] = (cached[0], max(0, cached[1] + delta))
