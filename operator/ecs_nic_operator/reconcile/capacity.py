"""Room for one more NIC before attaching: Huawei's v1 API says how many NICs a server can still take
(``attachableQuantity.free_nic``, from ``EcsClient.attachable_nics``); a POST that would exceed it is not sent.

Pure: the caller passes what the cloud reported and how many attaches of its own on that server are in flight
(sent, or about to be, but not yet in the count the cloud gave). An unknown count (upstream OpenStack has no
such API) never blocks: the cloud's own quota error still does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ecs_nic_operator.conditions import Reason


@dataclass(frozen=True, slots=True)
class NoRoom:
    reason: str  # Reason.NIC_LIMIT_REACHED, for Ready=False and Synced=False
    message: str
    retry_in: float


def nic_limit(server_id: str, free_nic: int | None, in_flight: int, spec_retry: float) -> NoRoom | None:
    """None if the server has room for this attach (or nobody knows); else ``NicLimitReached``."""
    if free_nic is None or free_nic - max(0, in_flight) > 0:
        return None
    others = f", {in_flight} more already being attached by this operator" if in_flight > 0 else ""
    message = (
        f"server {server_id} can take no more NICs (the cloud reports {free_nic} free{others}): detach a NIC from "
        f"it, or move it to a flavor with more NICs. No attach was sent; looking again every {spec_retry:.0f} s"
    )
    return NoRoom(Reason.NIC_LIMIT_REACHED, message, spec_retry * random.uniform(0.9, 1.1))
