"""The fence: whether this process may send a cloud request or a Kubernetes write right now.

With leader election on (leader.py), the fence is open only until the renew deadline of the last renewal
the API server confirmed, measured on this process's monotonic clock from the moment that renewal was
*sent*. Every outgoing request checks it at the last step before the wire (after any rate-limit or
thread-pool wait), so a leader that was paused (SIGSTOP, a long GC, a frozen VM) and wakes up after its
lease ran out is refused before the first request it attempts, whichever task happens to run first; the
election loop then notices and exits. Another replica takes over only after a full lease duration
(15 s) since *it* saw the last renewal, which is later than the renewal was sent: the 5 s between the
renew deadline (10 s) and the lease duration is the margin for a check that passed just before a pause.

Without leader election the fence is never enforced (one replica, nothing to fence against).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Fenced(Exception):
    """Refused: this process does not hold a valid lease, so it must not act."""


class Fence:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.enforcing = False
        self._until = -math.inf
        self._closed = False
        self.refused = 0  # requests refused, for the log line at exit and for tests

    def enforce(self) -> None:
        """Leader election is on: nothing goes out until open_until() is called."""
        self.enforcing = True

    def open_until(self, deadline: float) -> None:
        if not self._closed:
            self._until = deadline

    def close(self) -> None:
        """For good: leadership lost or handed back. A process never leads twice (it exits instead)."""
        self._closed = True
        self._until = -math.inf

    @property
    def closed(self) -> bool:
        return self._closed

    def allowed(self) -> bool:
        return not self.enforcing or (not self._closed and self._clock() < self._until)

    def remaining(self) -> float:
        return math.inf if not self.enforcing else self._until - self._clock()

    def check(self, what: str) -> None:
        if not self.allowed():
            self.refused += 1
            raise Fenced(f"{what}: refused, this replica does not hold the leader lease")


FENCE = Fence()
