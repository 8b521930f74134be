"""The Lease protocol against a small in-memory stand-in for the API server's optimistic concurrency.

The real-stack proof (processes killed, paused, partitioned) is tests/integration/faults/test_failover.py.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
from kubernetes import client

from ecs_nic_operator import leader
from ecs_nic_operator.fence import FENCE, Fence, Fenced


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLeases:
    """read/create/replace of one namespace's Leases, with resourceVersion checks like the API server's."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.writes = 0
        self.down = False

    def _answer(self, obj: dict[str, Any]) -> Any:
        return types.SimpleNamespace(data=json.dumps(obj).encode())

    def _check(self) -> None:
        if self.down:
            raise client.ApiException(status=503, reason="Service Unavailable")

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Any:
        self._check()
        if name not in self.items:
            raise client.ApiException(status=404, reason="Not Found")
        return self._answer(self.items[name])

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self._check()
        name = body["metadata"]["name"]
        if name in self.items:
            raise client.ApiException(status=409, reason="AlreadyExists")
        return self._store(name, body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> Any:
        self._check()
        current = self.items.get(name)
        if current is None:
            raise client.ApiException(status=404, reason="Not Found")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise client.ApiException(status=409, reason="Conflict")
        return self._store(name, body)

    def _store(self, name: str, body: dict[str, Any]) -> Any:
        self.rv += 1
        self.writes += 1
        stored = json.loads(json.dumps(body))
        stored["metadata"]["resourceVersion"] = str(self.rv)
        stored["spec"] = {k: v for k, v in stored["spec"].items() if v is not None}
        self.items[name] = stored
        return self._answer(stored)


@pytest.fixture(autouse=True)
def fence() -> Any:
    """The process-wide fence, reset around each test (the Elector opens and closes it)."""
    saved = dict(FENCE.__dict__)
    yield FENCE
    FENCE.__dict__.update(saved)


def elector(leases: FakeLeases, clock: Clock, who: str) -> leader.Elector:
    config = leader.ElectionConfig(namespace="ops", name="ecs-nic-operator", identity=who)
    e = leader.Elector(config, client.ApiClient(), clock=clock)
    e.leases = leases
    return e


def holder(leases: FakeLeases) -> str:
    return str(leases.items["ecs-nic-operator"]["spec"].get("holderIdentity") or "")


def test_the_first_candidate_creates_the_lease_and_a_second_one_waits_a_full_lease_duration() -> None:
    leases, clock = FakeLeases(), Clock()
    FENCE.__init__(clock)  # type: ignore[misc]
    FENCE.enforce()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire()
    assert holder(leases) == "a" and FENCE.allowed()
    assert not b.try_acquire()
    # a stops renewing (killed): b counts from when *it* first saw the record, never from renewTime.
    clock.now += 14.9
    assert not b.try_acquire()
    clock.now += 0.2
    assert b.try_acquire()
    spec = leases.items["ecs-nic-operator"]["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"], spec["leaseDurationSeconds"]) == ("b", 1, 15)


def test_renewals_seen_by_a_standby_restart_its_count() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire()
    for _ in range(10):
        clock.now += 2
        assert a.renew()
        assert not b.try_acquire()
    assert holder(leases) == "a"


def test_a_standby_that_starts_late_does_not_trust_an_old_renew_time() -> None:
    leases, clock = FakeLeases(), Clock()
    a = elector(leases, clock, "a")
    assert a.try_acquire()
    clock.now += 100  # renewTime in the Lease is now 100 s old by any clock
    b = elector(leases, clock, "b")
    assert not b.try_acquire()  # first sight: the count starts now
    clock.now += 15.1
    assert b.try_acquire()


def test_two_standbys_racing_for_an_expired_lease_one_wins() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b, c = (elector(leases, clock, n) for n in "abc")
    assert a.try_acquire()
    assert not b.try_acquire() and not c.try_acquire()
    clock.now += 16
    # Both read the same expired record; the second write carries a stale resourceVersion.
    lease = leases.items["ecs-nic-operator"]
    original = leases.read_namespaced_lease
    leases.read_namespaced_lease = lambda *args, **kw: leases._answer(lease)  # type: ignore[method-assign]
    won = [b.try_acquire(), c.try_acquire()]
    leases.read_namespaced_lease = original  # type: ignore[method-assign]
    assert sorted(won) == [False, True]
    assert holder(leases) in {"b", "c"}


def test_a_leader_that_cannot_renew_is_fenced_at_the_renew_deadline_before_anyone_may_take_over() -> None:
    leases, clock = FakeLeases(), Clock()
    FENCE.__init__(clock)  # type: ignore[misc]
    FENCE.enforce()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    leases.down = True
    clock.now += 9.9
    assert FENCE.allowed()
    clock.now += 0.2
    assert not FENCE.allowed()  # 10 s after the last confirmed renewal was sent
    with pytest.raises(Fenced):
        FENCE.check("cloud POST")
    leases.down = False
    assert not b.try_acquire()  # b may take over only at 15 s since it saw the renewal
    clock.now += 5
    assert b.try_acquire()


def test_a_deposed_leader_does_not_overwrite_the_new_holder() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    clock.now += 20  # a paused (SIGSTOP) past the lease; b takes over
    assert b.try_acquire()
    writes = leases.writes
    assert a.renew() is False  # past its own deadline: not even an attempt
    # Within its deadline by its clock, yet the Lease was taken: it learns so from the conflict.
    a.valid_until = clock.now + 5
    assert a.renew() is None
    assert holder(leases) == "b" and leases.writes == writes


def test_release_hands_the_lease_to_the_next_look_of_a_standby() -> None:
    leases, clock = FakeLeases(), Clock()
    FENCE.__init__(clock)  # type: ignore[misc]
    FENCE.enforce()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert FENCE.closed and not FENCE.allowed()  # closed before the write
    assert holder(leases) == ""
    assert b.try_acquire()
    assert leases.items["ecs-nic-operator"]["spec"]["leaseTransitions"] == 1


def test_the_fence_is_open_without_leader_election_and_closed_for_good_once_lost() -> None:
    clock = Clock()
    fence = Fence(clock)
    fence.check("anything")  # not enforcing: one replica, nothing to fence
    fence.enforce()
    with pytest.raises(Fenced):
        fence.check("before the lease")
    fence.open_until(clock.now + 10)
    fence.check("while leading")
    fence.close()
    fence.open_until(clock.now + 10)
    with pytest.raises(Fenced):
        fence.check("after losing")
    assert fence.refused == 2


def test_bad_timings_are_refused_with_a_message() -> None:
    with pytest.raises(leader.ConfigError, match="renew deadline"):
        leader.ElectionConfig(namespace="n", name="x", identity="i", lease_duration=10, renew_deadline=10)


def test_the_lease_namespace_comes_from_the_flag_then_the_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "from-pod")
    assert leader.lease_namespace("from-flag") == "from-flag"
    assert leader.lease_namespace("") == "from-pod"
    monkeypatch.delenv("POD_NAMESPACE")
    monkeypatch.setattr(leader, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "absent")
    with pytest.raises(leader.ConfigError, match="--leader-election-namespace"):
        leader.lease_namespace(None)


def test_a_standby_is_ready_before_any_watch_and_a_leader_only_once_its_watches_caught_up() -> None:
    from ecs_nic_operator.health import Config, Health

    clock = Clock()
    health = Health(Config(interval=1.0), clock=clock)
    health.role = "standby"
    ready, body = health.readiness()
    assert ready and body["role"] == "standby"
    assert health.liveness()[0]
    health.role = "leader"
    ready, body = health.readiness()
    assert not ready and body["role"] == "leader"
    assert any("initial listing" in p for p in body["problems"])
    for plural in ("ecsnicattachments", "ecsclouds"):
        health.listed(plural, [])
    assert health.readiness()[0]
