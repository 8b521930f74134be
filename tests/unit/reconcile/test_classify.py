"""Which condition reason a cloud "in use" conflict maps to."""

from __future__ import annotations

import pytest

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.config import Settings
from ecs_nic_operator.reconcile.errors import classify


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Fixed IP address 10.0.0.3 is already in use on instance 7b7e1f5c.", Reason.IP_IN_USE),
        ("Fixed IP address 10.0.0.3 is already in use on instance port ce531f90.", Reason.IP_IN_USE),
        ("IP address 10.0.0.3 already allocated in subnet d9cfef77", Reason.IP_IN_USE),
        ("Port ce531f90 is still in use.", Reason.PORT_IN_USE),
        ("Port ce531f90 is already attached to a relationship (ship)", Reason.PORT_IN_USE),
    ],
)
def test_in_use_reason(message: str, reason: str) -> None:
    exc = errors.InUse("attach", message, status=409)
    assert classify(exc, Settings(), 1).reason == reason
