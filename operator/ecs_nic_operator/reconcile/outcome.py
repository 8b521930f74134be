"""What a phase decided: what the user should see, which Events go with it, and when to look next.

A phase returns one of these instead of writing status or scheduling itself; the controller applies it
(status patch with its Event, the other Events, the finalizer's release) and then schedules, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecs_nic_operator.conditions import Condition
from ecs_nic_operator.resources import Attachment, Key

Event = tuple[str, str, str]  # kind ("Normal" or "Warning"), reason, message


@dataclass(frozen=True, slots=True)
class Look:
    """When to reconcile a key again (see WorkQueue.schedule for the lanes)."""

    after: float = 0.0
    new: bool = False  # a first look: behind the due keys of the main lane
    front: bool = False  # before every key already due


NOW = Look()


@dataclass(frozen=True, slots=True)
class Write:
    """A status patch: written only if something a user sees changes; its Event only with a new message."""

    obj: Attachment  # the copy the phase decided on (the newest it held)
    fields: dict[str, Any] | None
    conditions: list[Condition]
    event: Event | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    write: Write | None = None
    next: Look | None = None  # None: no look until a watch event or a cloud change brings one
    wake: tuple[tuple[Key, Look], ...] = ()  # other attachments to look at (a server's siblings)
    events: tuple[Event, ...] = ()  # Events that go with no status change (posted before the write)
    release: bool = False  # remove the finalizer: nothing of ours is left to detach
    label: str = "ok"  # ecsnic_reconciles_total outcome: "ok", or "deferred" when blocked or waiting
    drifted: bool = False  # follow only: the port left the server; the controller re-attaches (repair)
