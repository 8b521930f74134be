"""Stuck operations and NIC capacity: bounded waits, messages a user can act on, slow retries, no false alarms."""

from __future__ import annotations

import pytest

from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.reconcile.capacity import nic_limit
from ecs_nic_operator.reconcile.stuck import (
    ATTACH_STUCK_AFTER,
    DETACH_STUCK_AFTER,
    STUCK_RETRY,
    attach_stuck,
    detach_stuck,
)

SERVER = "7b7e1f5c-0000-4000-8000-000000000001"
PORT = "ce531f90-0000-4000-8000-000000000002"


def test_a_detach_is_stuck_only_after_the_bound_and_only_while_the_port_is_listed() -> None:
    assert (
        detach_stuck(SERVER, PORT, accepted_at=100.0, now=100.0 + DETACH_STUCK_AFTER - 1, port_state="ACTIVE") is None
    )
    assert detach_stuck(SERVER, PORT, accepted_at=100.0, now=100.0 + 10 * DETACH_STUCK_AFTER, port_state=None) is None
    stuck = detach_stuck(SERVER, PORT, accepted_at=100.0, now=100.0 + DETACH_STUCK_AFTER, port_state="ACTIVE")
    assert stuck is not None
    assert stuck.reason == Reason.DETACH_STUCK
    for word in (PORT, SERVER, "port_state ACTIVE", "stop the server", "deletionPolicy: Orphan", "300 s", "every 60 s"):
        assert word in stuck.message
    assert 0.9 * STUCK_RETRY <= stuck.retry_in <= 1.1 * STUCK_RETRY


def test_an_attach_is_stuck_only_while_the_port_is_not_active_after_the_bound() -> None:
    assert attach_stuck(SERVER, PORT, attached_at=0.0, now=ATTACH_STUCK_AFTER - 1, port_state="DOWN") is None
    assert attach_stuck(SERVER, PORT, attached_at=0.0, now=10 * ATTACH_STUCK_AFTER, port_state="ACTIVE") is None
    stuck = attach_stuck(SERVER, PORT, attached_at=0.0, now=ATTACH_STUCK_AFTER + 5, port_state="DOWN", retry=30)
    assert stuck is not None and stuck.reason == Reason.ATTACH_STUCK
    assert "still DOWN more than 300 s" in stuck.message and "every 30 s" in stuck.message
    later = attach_stuck(SERVER, PORT, attached_at=0.0, now=ATTACH_STUCK_AFTER + 65, port_state="DOWN", retry=30)
    assert later is not None and later.message == stuck.message  # a later look writes nothing new
    assert 27 <= stuck.retry_in <= 33


@pytest.mark.parametrize(
    ("free", "in_flight", "blocked"),
    [(None, 5, False), (3, 0, False), (1, 0, False), (0, 0, True), (2, 2, True), (2, 1, False), (1, -3, False)],
)
def test_nic_limit(free: int | None, in_flight: int, blocked: bool) -> None:
    verdict = nic_limit(SERVER, free, in_flight, spec_retry=300.0)
    assert (verdict is not None) is blocked
    if verdict is not None:
        assert verdict.reason == Reason.NIC_LIMIT_REACHED
        assert SERVER in verdict.message and "No attach was sent" in verdict.message
        assert 270 <= verdict.retry_in <= 330
