"""Huawei's error table end to end: the simulator answers in Huawei's dialect (HTTP 400 + Ecs.xxxx, the gateway's
APIGW codes), and each case ends in its specific Ready reason with a message naming what to fix, then recovers once
the cause is fixed. All cases run side by side so the table costs one slow-retry period, not one per case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.integration.conftest import NET_A, NET_B
from tests.integration.faults.conftest import (
    SEEDED_SERVERS,
    Stack,
    apply_cloud,
    credentials_data,
    delete_cloud,
)
from tests.integration.kube import condition, wait_for

SPEC_RETRY = 15.0
OPERATOR_ENV = {"ECSNIC_SPEC_RETRY": str(SPEC_RETRY)}
OPERATOR_ARGS = ["--resync-period", "300"]
SIM_BEHAVIOUR = {"dialect": "huawei"}
NET_NEW = "77777777-8888-4999-8aaa-cccccccccccc"  # created by the "subnet missing" fix
SUBNET_NEW = "cccccccc-dddd-4eee-8fff-111111111111"
NET_TINY = "77777777-8888-4999-8aaa-dddddddddddd"  # a /29 whose five addresses free ports hold
SUBNET_TINY = "cccccccc-dddd-4eee-8fff-222222222222"


@dataclass
class Case:
    name: str
    reason: str
    words: tuple[str, ...]  # the cloud's code and what the message must name so the user knows what to fix
    fix: Callable[[], None]
    spec: dict[str, Any] = field(default_factory=dict)
    recreate: dict[str, Any] | None = None  # spec is immutable: the fix is a new resource


def test_huawei_codes_end_in_specific_conditions_and_recover(stack: Stack) -> None:
    kube, sim = stack.kube, stack.sim
    ns = stack.new_namespace("flt-huawei")
    holders: list[str] = []
    cases: list[Case] = []
    clouds: list[str] = []

    def holder(name: str, spec: dict[str, Any]) -> None:
        stack.create(ns, name, spec)
        holders.append(name)

    ghost = "0badbeef-0000-4000-8000-00000000a001"
    cases.append(
        Case("ecs-0614", "ServerNotFound", ("Ecs.0614", ghost), lambda: sim.add_server(ghost), stack.spec(ghost))
    )
    cases.append(
        Case(
            "ecs-0038",
            "NetworkNotFound",
            ("Ecs.0038", NET_NEW),
            lambda: sim.add_network(NET_NEW, SUBNET_NEW, "10.51.0.0/16"),
            stack.spec(SEEDED_SERVERS[0], netId=NET_NEW),
        )
    )
    # Attached to another server by some other tool: no attachment claims it, so the cloud's Ecs.0919 is what
    # the user sees (a port another attachment holds is PortClaimed before any call, see test_ownership.py).
    busy_port = sim.add_port(NET_B, serverId=SEEDED_SERVERS[1])["port_id"]
    cases.append(
        Case(
            "ecs-0919",
            "PortInUse",
            ("Ecs.0919", busy_port),
            lambda: sim.force_detach(SEEDED_SERVERS[1], busy_port),
            stack.spec(SEEDED_SERVERS[2], portId=busy_port),
        )
    )
    holder("ip-holder", stack.spec(SEEDED_SERVERS[3], fixedIps=[{"ipAddress": "10.30.66.6"}]))
    cases.append(
        Case(
            "ecs-0010",
            "IpInUse",
            ("Ecs.0010", "10.30.66.6"),
            lambda: stack.delete(ns, "ip-holder"),
            stack.spec(SEEDED_SERVERS[4], fixedIps=[{"ipAddress": "10.30.66.6"}]),
        )
    )
    cases.append(
        Case(
            "ecs-0039",
            "InvalidIp",
            ("Ecs.0039", "10.99.0.5", "subnet"),
            lambda: None,
            stack.spec(SEEDED_SERVERS[5], fixedIps=[{"ipAddress": "10.99.0.5"}]),
            recreate=stack.spec(SEEDED_SERVERS[5], fixedIps=[{"ipAddress": "10.30.99.9"}]),
        )
    )
    # The full server: Huawei's free-NIC count stops the attach before the POST that would get Ecs.0050.
    small = stack.new_server(max_nics=1)
    holder("quota-holder", stack.spec(small))
    cases.append(
        Case(
            "free-nic-0",
            "NicLimitReached",
            ("0 free", small, "No attach was sent"),
            lambda: stack.delete(ns, "quota-holder"),
            stack.spec(small, netId=NET_B),
        )
    )
    sim.add_network(NET_TINY, SUBNET_TINY, "10.52.0.0/29")
    for _ in range(5):
        sim.add_port(NET_TINY)
    cases.append(
        Case(
            "ecs-0012",
            "SubnetExhausted",
            ("Ecs.0012", SUBNET_TINY),
            lambda: None,
            stack.spec(SEEDED_SERVERS[6], netId=NET_TINY),
            recreate=stack.spec(SEEDED_SERVERS[6], netId=NET_A),
        )
    )
    locked = stack.new_server()
    sim.set_server_state(locked, "locked")
    cases.append(
        Case(
            "ecs-0605",
            "ServerLocked",
            ("Ecs.0605", locked, "unlock"),
            lambda: sim.set_server_state(locked, "ACTIVE"),
            stack.spec(locked),
        )
    )
    # A wrong path under the endpoint: the gateway's 404 is about the API, not the server.
    wrong = f"{stack.cloud}-wrong-api"
    apply_cloud(kube, wrong, f"{sim.url}/not-the-ecs-api", secret=credentials_data("Token", sim.url))
    clouds.append(wrong)

    def right_endpoint() -> None:
        # endpoint is immutable: a different endpoint is a different EcsCloud (here: the same name again).
        delete_cloud(kube, wrong)
        wait_for(
            lambda: kube.kubectl("get", "ecscloud", wrong, check=False).returncode != 0,
            timeout=30,
            what=f"EcsCloud {wrong} gone",
        )
        apply_cloud(kube, wrong, sim.url, secret=credentials_data("Token", sim.url))

    cases.append(
        Case(
            "apigw-0101",
            "ApiNotFound",
            ("APIGW.0101", "endpoint"),
            right_endpoint,
            {**stack.spec(SEEDED_SERVERS[7]), "cloudRef": {"name": wrong}},
        )
    )

    try:
        wait_for(lambda: all(stack.is_ready(ns, h) for h in holders), timeout=30, what="holders Ready")
        for case in cases:
            stack.create(ns, case.name, case.spec)
        failures: list[str] = []
        for case in cases:
            obj = stack.wait_reason(ns, case.name, case.reason, timeout=40)
            ready, synced = condition(obj, "Ready"), condition(obj, "Synced")
            assert ready is not None and synced is not None
            if ready["status"] != "False" or synced["status"] != "False":
                failures.append(f"{case.name}: Ready={ready['status']} Synced={synced['status']}")
            for word in case.words:
                if word not in ready["message"]:
                    failures.append(f"{case.name}: message {ready['message']!r} does not name {word!r}")
        assert not failures, "\n".join(failures)
        # No refused case left a NIC behind on its server (the quota case's server holds the holder's NIC).
        for case in cases:
            if case.name != "free-nic-0":
                assert sim.ports_of(case.spec["serverId"]) == [], case.name

        for case in cases:
            case.fix()
        for case in cases:
            if case.recreate is not None:
                stack.delete(ns, case.name)
        for case in cases:
            if case.recreate is not None:
                stack.wait_gone(ns, case.name)
                stack.create(ns, case.name, case.recreate)
        not_ready = []
        for case in cases:
            try:
                stack.wait_ready(ns, case.name, timeout=SPEC_RETRY * 1.1 + 45)
            except AssertionError as exc:
                not_ready.append(f"{case.name}: {exc}")
        assert not not_ready, "\n".join(not_ready)
    finally:
        for name in clouds:
            delete_cloud(kube, name)
