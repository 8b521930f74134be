"""What the reconciler remembers per attachment between looks (never written anywhere: a restart starts
from the objects and the cloud again), with one place that forgets a key."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ecs_nic_operator.reconcile.store import ServerKey
from ecs_nic_operator.reconcile.timing import FirstLook
from ecs_nic_operator.resources import Key


@dataclass
class Memory:
    attempts: defaultdict[Key, int] = field(default_factory=lambda: defaultdict(int))  # failures in a row
    polls: dict[Key, int] = field(default_factory=dict)  # looks at a DOWN port, or at a detaching one
    waiting: defaultdict[ServerKey, set[Key]] = field(default_factory=lambda: defaultdict(set))  # following DOWN
    activation: FirstLook = field(default_factory=FirstLook)  # when to look after an attach
    timed: dict[Key, float] = field(default_factory=dict)  # next look is a first look after the attach at
    # port, when its DELETE was answered, and whether that answer was a 404 (not proof: see finalize)
    detaching: dict[Key, tuple[str, float, bool]] = field(default_factory=dict)
    detach: FirstLook = field(default_factory=FirstLook)  # when to look after a DELETE was answered
    # Since when a followed port is not ACTIVE, and since when a port's detach was first accepted (a DELETE sent
    # again keeps it): the bounds of AttachStuck / DetachStuck (reconcile/stuck.py).
    down_since: dict[Key, float] = field(default_factory=dict)
    detach_since: dict[Key, tuple[str, float]] = field(default_factory=dict)
    # The sequence of the intent this process last recorded for a key, until status.intentSeq holds it.
    signed: dict[Key, int] = field(default_factory=dict)
    seen: set[Key] = field(default_factory=set)  # reconciled at least once by this process (resume progress)

    def bump(self, key: Key) -> int:
        self.attempts[key] += 1
        return self.attempts[key]

    def forget_waiting(self, skey: ServerKey, key: Key) -> None:
        waiting = self.waiting.get(skey)
        if waiting is not None:
            waiting.discard(key)
            if not waiting:
                del self.waiting[skey]

    def forget(self, key: Key) -> None:
        self.attempts.pop(key, None)
        self.polls.pop(key, None)
        self.detaching.pop(key, None)
        self.detach_since.pop(key, None)
        self.down_since.pop(key, None)
        self.timed.pop(key, None)
        self.signed.pop(key, None)
        self.seen.discard(key)
