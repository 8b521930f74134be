"""Operations the cloud accepted and never finishes: when to say so, what to tell the user, how often to look.

Some flavors detach a NIC only while the server is stopped: the DELETE is answered 202 and the port stays
listed for ever. A port can also stay DOWN after an attach (no driver in the guest, no host binding). Waiting
silently hides both; giving up would strand the NIC. So after a bounded time the condition says what the cloud
reports and what to do, and the reconcile keeps trying slowly (a detach is sent again: a repeat can get through
once the cause is gone), so the resource recovers on its own when the cloud finishes.

Pure functions: the caller passes the times (monotonic seconds) and the cloud's view of the port. Messages name
the bound, not the age, so a look that changes nothing writes nothing (no status patch, no repeated Event).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ecs_nic_operator import conditions
from ecs_nic_operator.conditions import READY, Reason

# Nova finishes a detach within seconds and a port turns ACTIVE within a minute on a healthy cloud; five minutes
# is far outside both, and short enough that a user sees the problem before giving up on it.
DETACH_STUCK_AFTER = 300.0
ATTACH_STUCK_AFTER = 300.0
# How often a stuck operation is looked at (and a stuck detach sent again) once reported.
STUCK_RETRY = 60.0


@dataclass(frozen=True, slots=True)
class Stuck:
    reason: str  # Reason.DETACH_STUCK or Reason.ATTACH_STUCK, for Ready=False
    message: str
    retry_in: float  # when to look again (jittered); for a detach, also send the DELETE again then


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.9, 1.1)


def detach_stuck(
    server_id: str,
    port_id: str,
    *,
    accepted_at: float,
    now: float,
    port_state: str | None,
    after: float = DETACH_STUCK_AFTER,
    retry: float = STUCK_RETRY,
) -> Stuck | None:
    """None while the detach accepted at ``accepted_at`` may still be finishing (or the port is gone:
    ``port_state`` None); otherwise ``DetachStuck`` with the cloud's state and what the user can do."""
    age = now - accepted_at
    if port_state is None or age < after:
        return None
    message = (
        f"port {port_id} is still attached to server {server_id} more than {after:.0f} s after the cloud accepted "
        f"its detach (port_state {port_state or 'unknown'}). Some flavors detach NICs only while the server is "
        "stopped: stop the server, or detach the NIC in the console; or set spec.deletionPolicy: Orphan to delete "
        f"this resource and leave the NIC attached. Sending the detach again every {retry:.0f} s; this resource is "
        "released as soon as the NIC is gone"
    )
    return Stuck(Reason.DETACH_STUCK, message, _jittered(retry))


def attach_stuck(
    server_id: str,
    port_id: str,
    *,
    attached_at: float,
    now: float,
    port_state: str,
    after: float = ATTACH_STUCK_AFTER,
    retry: float = STUCK_RETRY,
) -> Stuck | None:
    """None while a port attached at ``attached_at`` may still come up, or once it is ACTIVE; otherwise
    ``AttachStuck`` (the NIC is attached, so it is never detached for this: the user decides)."""
    age = now - attached_at
    if port_state == "ACTIVE" or age < after:
        return None
    message = (
        f"port {port_id} on server {server_id} is still {port_state or 'not ACTIVE'} more than {after:.0f} s after "
        "it was attached. Check the server (a guest without the NIC driver, or one that needs a reboot to see the NIC) "
        f"and the port's status on the network side. Looking again every {retry:.0f} s; Ready turns True as soon "
        "as the cloud reports the port ACTIVE"
    )
    return Stuck(Reason.ATTACH_STUCK, message, _jittered(retry))


def stuck_since(status: dict[str, Any], reason: str, now: float, after: float) -> float:
    """Where the bound of a stuck operation starts when this process has not seen it start: now, unless the
    status already reports it stuck (before a restart), so a restart does not hide it again for a while."""
    ready = conditions.get(status, READY)
    return now - after if ready is not None and ready.get("reason") == reason else now
