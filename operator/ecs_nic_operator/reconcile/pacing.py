"""When to look next: the pacing that makes a wave of attaches cheap (the benchmark's figures come from here).

Each rule below trades a little latency or staleness for fewer cloud calls, and says why it is safe:
- A server's new attachments are taken back to back (``Runs``): they share one baseline list and the last
  one's poll answers for all of them, instead of one list and one poll each.
- The first look after an attach or a detach comes when such changes are usually done (reconcile/timing.py
  learns it), then backs off (``poll_delay``).
- Drift checks of a server's Ready attachments fall at one phase per server (``resync_delay``), so the
  server's attachments share one list call per period; after a start or takeover, the first of them are
  spread the same way over a shorter window, behind new work (``resumed_drift_delay``).
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from collections.abc import Callable

from ecs_nic_operator.config import Settings
from ecs_nic_operator.reconcile.status import healthy
from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.resources import Attachment, Key

# How old a server's cached port list may be to serve as the "what the server had" baseline of an attach:
# we hold the server's lock and note our own attaches in the view, and even a fresh list cannot exclude an
# out-of-band attach between it and our POST (the rate limiter may hold the POST for seconds).
BASELINE_MAX_AGE = 30.0
# How old a list showing a followed port ACTIVE may be to end the poll without another call (only a list
# made after the attach can show it ACTIVE).
ACTIVE_SEEN_MAX_AGE = 15.0
# How much later than usual an attachment followed by another attach on its server looks itself (the
# last one's look usually answers for it first), beyond the time the rest of the run should take.
RUN_FALLBACK = 10.0
# Looks at a detaching port still listed before its DELETE is sent again (the first may have been lost).
RESEND_DETACH_AFTER = 6


def poll_delay(settings: Settings, polls: int) -> float:
    return min(settings.poll_max, settings.poll_min * 2.0 ** max(0, polls - 2))


def run_fallback(first_look: float, attaches_left: int, took: float) -> float:
    """When an attachment whose server has attaches_left more in its run looks itself, should the run stop:
    after the rest of the run, each attach as long as its own took (the cloud's latency and the ceiling's
    queue), then the last one's first look, and RUN_FALLBACK. A fixed delay fell inside long runs: at 5 s a
    call, a server's first attachments polled on their own before the run was done (a third more calls)."""
    return attaches_left * max(0.0, took) + first_look + RUN_FALLBACK


def resync_delay(settings: Settings, skey: ServerKey) -> float:
    """Next drift check at a phase fixed per server, so a server's attachments share one list call."""
    period = settings.resync_period
    phase = (zlib.crc32(f"{skey[0]}/{skey[1]}".encode()) % 10_000) / 10_000 * period
    delay: float = (phase - time.time()) % period
    if delay < period * 0.1:
        delay += period
    return delay


def resumed_drift_delay(settings: Settings, skey: ServerKey) -> float:
    """First look, after a start or a takeover, at an attachment that is attached and Ready: a drift check,
    not urgent. At its server's phase (its attachments share one list call) within a quarter of the resync
    period, so these checks cost the cloud four times the steady drift-check rate, well under the ceiling
    that rate is sized for, and new work (due now) goes first."""
    window = settings.resync_period / 4
    return (zlib.crc32(f"{skey[0]}/{skey[1]}".encode()) % 10_000) / 10_000 * window


def resumed_ready(obj: Attachment) -> bool:
    """Attached and Ready when this process first holds it: its first look is a drift check, not new work."""
    return bool(obj.port_id and obj.status_server and not obj.paused and healthy(obj))


class Runs:
    """New attachments not looked at yet, by server: after one attaches, the next on its server is taken
    out of turn, so a server's attaches come back to back and share one baseline list and one poll."""

    def __init__(self) -> None:
        self._fresh: dict[ServerKey, dict[Key, None]] = defaultdict(dict)

    @staticmethod
    def _server(obj: Attachment) -> ServerKey | None:
        return (obj.spec.cloud, obj.spec.server_id.lower()) if obj.spec.server_id else None

    def add(self, obj: Attachment) -> None:
        skey = self._server(obj)
        if skey is not None:
            self._fresh[skey][obj.key] = None

    def discard(self, obj: Attachment) -> None:
        skey = self._server(obj)
        fresh = self._fresh.get(skey) if skey is not None else None
        if fresh is not None and skey is not None:
            fresh.pop(obj.key, None)
            if not fresh:
                del self._fresh[skey]

    def left(self, skey: ServerKey) -> int:
        """New attachments of the server's run not taken yet."""
        return len(self._fresh.get(skey, ()))

    def take_next(self, skey: ServerKey, still_new: Callable[[Key], bool]) -> Key | None:
        """The next new attachment on this server that ``still_new`` accepts, removed from the run."""
        fresh = self._fresh.get(skey)
        while fresh:
            key = next(iter(fresh))
            del fresh[key]
            if still_new(key):
                return key
        self._fresh.pop(skey, None)
        return None
