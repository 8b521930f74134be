"""The real stack against a Huawei-flavoured cloud at its worst ordinary day: eight attachments on servers that are
busy after every NIC operation (400 Ecs.0100), with 40% of the successful attaches' answers lost (the change is made,
the gateway answers 504). They converge within a minute with exactly one NIC each: busy means retry in seconds, and
a lost answer means look before attaching again."""

from __future__ import annotations

import time

from tests.integration.faults.conftest import Stack

SIM_BEHAVIOUR = {"dialect": "huawei", "lostReplyRate": 0.4, "taskTime": 1.0}
ATTACHMENTS = 8


def test_busy_servers_and_lost_replies_converge_with_one_nic_each(stack: Stack) -> None:
    sim = stack.sim
    ns = stack.new_namespace("flt-busy")
    servers = [stack.new_server() for _ in range(2)]
    for server in servers:
        sim.set_server_state(server, "busy")
    names = {f"nic-{i}" for i in range(ATTACHMENTS)}
    began = time.monotonic()
    for i, name in enumerate(sorted(names)):
        stack.create(ns, name, stack.spec(servers[i % len(servers)]))

    stack.converge(ns, names, set(), set(servers), timeout=60)
    state = sim.state()
    posts = sum(n for k, n in state["calls"].items() if k.startswith("POST") and "os-interface" in k)
    print(f"converged in {time.monotonic() - began:.1f} s: {posts} POSTs, refusals {state['refusals']}")

    # The run met what it was meant to: the servers refused while busy, and answers were lost.
    refusals = state["refusals"]
    assert refusals.get("Ecs.0100", 0) >= 1, refusals
    assert refusals.get("lostReply", 0) >= 1, refusals
    assert all(state["serverStates"][s] == "busy" for s in servers)
