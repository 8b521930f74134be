"""Cloud faults: 5xx, 409-busy bursts, 429 with and without Retry-After, responses slower than the client timeout,
dropped connections (before and after the cloud committed), and the simulator restarting. Every resource
converges to exactly one NIC (or none, once deleted), and the simulator never measures more calls in a second
than the EcsCloud's ceiling allows.

The EcsCloud here has rateLimit {qps: 8, burst: 1}: a token bucket with burst 1 lets at most qps + 1 = 9 calls
into any one-second window, and that is the bound asserted on peakCallsPerSecond.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.faults.conftest import FULL, SEEDED_SERVERS, Stack

QPS, BURST = 8, 1
CEILING = QPS + BURST
CLOUD_SPEC = {"rateLimit": {"qps": QPS, "burst": BURST}}
CLIENT_TIMEOUT = 2.0
OPERATOR_ENV = {"ECSNIC_CLOUD_TIMEOUT": str(CLIENT_TIMEOUT)}
OPERATOR_ARGS = ["--resync-period", "4"]
PER_PROFILE = 12 if FULL else 6

PROFILES: dict[str, dict[str, Any]] = {
    "5xx-20pct": {"failRate": 0.2},
    "409-busy-burst": {"busyFirst": 3},
    "429-no-retry-after": {"qps": 4},
    "429-retry-after": {"qps": 4, "retryAfter": 1},
    "slower-than-timeout": {"slowRate": 0.25, "slowDelay": CLIENT_TIMEOUT * 2},
    "dropped-connections": {"dropRate": 0.15},
    "dropped-after-commit": {"dropRate": 0.15, "dropAfterCommit": True},
    "everything-at-once": {"failRate": 0.1, "busyFirst": 1, "dropRate": 0.1, "dropAfterCommit": True, "qps": 6},
}
QUIET = {
    "failRate": 0,
    "busyFirst": 0,
    "qps": 0,
    "retryAfter": None,
    "slowRate": 0,
    "dropRate": 0,
    "dropAfterCommit": False,
    "replyDelay": 0,
}


@pytest.mark.parametrize("profile", list(PROFILES))
def test_faults_converge_within_the_rate_ceiling(stack: Stack, profile: str) -> None:
    ns = stack.new_namespace(f"flt-{profile[:20]}")
    servers = [stack.new_server() for _ in range(2)]
    names = [f"nic-{i}" for i in range(PER_PROFILE)]
    doomed = set(names[::3])
    stack.sim.reset_counters()  # fresh busyFirst counters and peak
    stack.sim.behaviour(**{**QUIET, **PROFILES[profile]})
    try:
        for i, name in enumerate(names):
            # IPs of their own per profile: a failed profile's leftovers must not fail the next one with IpInUse.
            ip = f"10.30.{200 + i}.{10 + list(PROFILES).index(profile)}"
            extra: dict[str, Any] = {"fixedIps": [{"ipAddress": ip}]} if i % 3 == 1 else {}
            stack.create(ns, name, stack.spec(servers[i % 2], **extra))
        # Deleted while the faults last: some mid-attach, some before their first look.
        for name in sorted(doomed):
            stack.delete(ns, name)
        stack.converge(ns, set(names) - doomed, doomed, set(servers), timeout=120)
        peak = stack.sim.state()["peakCallsPerSecond"]
        print(f"{profile}: peak {peak} calls/s, calls {stack.sim.state()['calls']}")
        assert peak <= CEILING, f"{peak} calls in one second; the EcsCloud allows {QPS} qps + burst {BURST}"
    finally:
        stack.sim.behaviour(**QUIET)
    for name in set(names) - doomed:
        stack.delete(ns, name)
    for name in names:
        stack.wait_gone(ns, name, timeout=60)
    assert all(stack.sim.ports_of(s) == [] for s in servers)


def test_simulator_restart_mid_run_converges(stack: Stack) -> None:
    """The world resets to the seed on restart (seeded servers survive, their NICs do not): attachments Ready
    before are re-attached as drift, ones created while the cloud is down attach once it is back."""
    ns = stack.new_namespace("flt-restart")
    servers = SEEDED_SERVERS[-4:]
    before = [f"before-{i}" for i in range(PER_PROFILE)]
    during = [f"during-{i}" for i in range(PER_PROFILE // 2)]
    stack.sim.reset_counters()
    for i, name in enumerate(before):
        stack.create(ns, name, stack.spec(servers[i % 4]))
    stack.converge(ns, set(before), set(), set(servers), timeout=60)

    stack.sim.stop()
    for i, name in enumerate(during):
        stack.create(ns, name, stack.spec(servers[i % 4], fixedIps=[{"ipAddress": f"10.30.250.{10 + i}"}]))
    stack.delete(ns, before[0])  # deleted while the cloud is down: it must wait, then find the NIC gone
    stack.wait_reason(ns, during[0], {"CloudUnavailable", "CloudNotReady"}, timeout=30)
    stack.sim.start()
    live = set(before[1:]) | set(during)
    stack.converge(ns, live, {before[0]}, set(servers), timeout=120)
    peak = stack.sim.state()["peakCallsPerSecond"]
    assert peak <= CEILING, f"{peak} calls in one second after the restart; ceiling {CEILING}"
    reasons = {r for _, r, _ in stack.events(ns)}
    assert "NicDetachedOutOfBand" in reasons  # the NICs the restart lost were noticed and said so
