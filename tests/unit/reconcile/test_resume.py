"""After a start or a takeover every object is new to the process: the attached and Ready ones are drift
checks and wait, spread by server, behind the work that is new (an attachment no replica has looked at)."""

from __future__ import annotations

from tests.unit.reconcile.harness import NET, SETTINGS, Harness

SERVERS = [f"srv-{i}" for i in range(8)]


async def test_ready_attachments_resumed_after_a_takeover_wait_behind_new_work() -> None:
    h = Harness()
    for server in SERVERS:
        h.cloud.servers[server] = {}
    ready = [("ns", f"ready-{i}") for i in range(16)]
    for i, (ns, name) in enumerate(ready):
        h.kube.create(ns, name, {"serverId": SERVERS[i % len(SERVERS)], "netId": NET})
    await h.settle()
    h.hold_events = True  # the leader is gone: nobody sees this one until the next takes over
    h.kube.create("ns", "new", {"serverId": SERVERS[0], "netId": NET})

    queue = h.new_controller().queue

    new = queue.due_in(("ns", "new"))
    assert new is not None and new <= 0
    waits = {key: queue.due_in(key) for key in ready}
    assert all(w is not None and 0 < w <= SETTINGS.resync_period / 4 for w in waits.values()), waits
    by_server: dict[str, list[float]] = {}
    for i, key in enumerate(ready):
        by_server.setdefault(SERVERS[i % len(SERVERS)], []).append(waits[key] or 0)
    # One phase per server (its attachments share one list call), different phases across servers. The
    # waits are read one after another, so the same phase may read a few milliseconds apart.
    assert all(max(w) - min(w) < 0.25 for w in by_server.values()), by_server
    phases = [min(w) for w in by_server.values()]
    assert max(phases) - min(phases) > 0.5, by_server
