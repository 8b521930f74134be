"""/readyz explains itself: an API server that stopped answering without a recorded error (a hanging probe)
is reported in words, never as empty parentheses (issue 17.10)."""

from __future__ import annotations

from ecs_nic_operator.health import Config, Health


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_unreachable_api_server_without_an_error_says_why() -> None:
    clock = Clock()
    health = Health(Config(interval=5.0), clock=clock)
    for plural in ("ecsnicattachments", "ecsclouds"):
        health.listed(plural, [])
    assert health.readiness()[0] is True
    clock.now += 21.0  # no probe answered since, and none failed either: it hangs
    ready, body = health.readiness()
    assert ready is False
    (problem,) = body["problems"]
    assert problem.startswith("API server unreachable for 21.0 s (") and "()" not in problem, problem
    health.unreachable("LIST ecsclouds: 503")
    assert "(LIST ecsclouds: 503)" in health.readiness()[1]["problems"][0]
