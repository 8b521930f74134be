"""Cloud-side errors: each ends in Ready=False with a specific reason and message, costs a bounded number of
cloud calls while it lasts, and recovers once the cause is fixed on the cloud or Kubernetes side.

All cases run side by side (their own servers, clouds and namespaces) so the table costs one retry period,
not one per case. Spec errors retry every ECSNIC_SPEC_RETRY seconds (15 here, 300 by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecs_nic_operator.devenv.controlplane import free_port
from ecs_nic_operator.devenv.processes import SimulatorProcess
from tests.integration.conftest import NET_A, NET_B
from tests.integration.faults.conftest import (
    SEEDED_SERVERS,
    SYSTEM_NS,
    TOKEN,
    Stack,
    apply_cloud,
    cloud_condition,
    credentials_data,
    delete_cloud,
)
from tests.integration.kube import condition, wait_for

SPEC_RETRY = 15.0
OPERATOR_ENV = {"ECSNIC_SPEC_RETRY": str(SPEC_RETRY)}
OPERATOR_ARGS = ["--resync-period", "300"]  # Ready resources stay quiet: the call count is the errors' own
NET_C = "77777777-8888-4999-8aaa-bbbbbbbbbbbb"  # created by the "unknown network" fix
SUBNET_C = "cccccccc-dddd-4eee-8fff-000000000000"


@dataclass
class Case:
    name: str
    reasons: tuple[str, ...]  # the Ready reason(s) expected: the specific one first
    words: tuple[str, ...]  # what the message must name so the user knows what to fix
    fix: Callable[[], None]
    cloud_calls: bool = True  # False: refused before any cloud call (a Kubernetes-side prerequisite)
    namespace: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    # Some causes cannot be fixed in place (spec is immutable): the fix is to recreate the resource.
    recreate: dict[str, Any] | None = None


def test_cloud_side_errors_end_in_specific_conditions_with_bounded_calls_and_recover(stack: Stack) -> None:
    kube, sim = stack.kube, stack.sim
    ns = stack.new_namespace("flt-errs")
    cases: list[Case] = []
    holders: list[str] = []  # resources that hold what a case needs; deleting them is that case's fix
    extra_clouds: list[str] = []
    spare: list[SimulatorProcess] = []

    def seeded(i: int) -> str:
        return SEEDED_SERVERS[i]

    def holder(name: str, spec: dict[str, Any]) -> None:
        stack.create(ns, name, spec)
        holders.append(name)

    # 1. unknown server -> the server is created
    ghost = "0badbeef-0000-4000-8000-000000000001"
    cases.append(
        Case("unknown-server", ("ServerNotFound",), (ghost,), lambda: sim.add_server(ghost), spec=stack.spec(ghost))
    )

    # 2. unknown network -> the network is created
    def add_network() -> None:
        sim.add_network(NET_C, SUBNET_C, "10.50.0.0/16")

    cases.append(
        Case(
            "unknown-network",
            ("NetworkNotFound",),
            (NET_C,),
            add_network,
            spec=stack.spec(seeded(0), netId=NET_C),
        )
    )

    # 3. unknown port -> the port is created
    port_id = "0badbeef-0000-4000-8000-000000000003"
    cases.append(
        Case(
            "unknown-port",
            ("PortNotFound",),
            (port_id,),
            lambda: sim.add_port(NET_B, id=port_id) and None,
            spec=stack.spec(seeded(1), portId=port_id),
        )
    )

    # 4. port owned by another attachment (on another server) -> the other attachment lets it go. Refused
    #    before any call: another attachment's port is never ours to attach, adopt or detach (PortClaimed).
    busy_port = sim.add_port(NET_B)["port_id"]
    holder("port-holder", stack.spec(seeded(2), portId=busy_port))
    cases.append(
        Case(
            "port-claimed",
            ("PortClaimed",),
            (busy_port, "port-holder"),
            lambda: stack.delete(ns, "port-holder"),
            cloud_calls=False,
            spec=stack.spec(seeded(3), portId=busy_port),
        )
    )

    # 5. IP outside the subnet -> spec is immutable: recreate with an IP inside it
    cases.append(
        Case(
            "ip-outside-subnet",
            ("InvalidRequest",),
            ("10.99.0.5",),
            lambda: None,
            spec=stack.spec(seeded(4), fixedIps=[{"ipAddress": "10.99.0.5"}]),
            recreate=stack.spec(seeded(4), fixedIps=[{"ipAddress": "10.30.99.5"}]),
        )
    )

    # 6. IP in use by a NIC on another server -> that NIC is detached
    holder("ip-holder", stack.spec(seeded(5), fixedIps=[{"ipAddress": "10.30.88.8"}]))
    cases.append(
        Case(
            "ip-in-use",
            ("IpInUse",),
            ("10.30.88.8",),
            lambda: stack.delete(ns, "ip-holder"),
            spec=stack.spec(seeded(6), fixedIps=[{"ipAddress": "10.30.88.8"}]),
        )
    )

    # 7. IP in use by a free (unattached) port -> spec is immutable: recreate with another IP
    sim.add_port(NET_A, ipAddress="10.30.77.7")
    cases.append(
        Case(
            "ip-in-use-by-free-port",
            ("IpInUse",),
            ("10.30.77.7",),
            lambda: None,
            spec=stack.spec(seeded(7), fixedIps=[{"ipAddress": "10.30.77.7"}]),
            recreate=stack.spec(seeded(7), fixedIps=[{"ipAddress": "10.30.77.8"}]),
        )
    )

    # 8. NIC quota (maxNics 1, already used) -> the NIC holding the slot is detached
    small = stack.new_server(max_nics=1)
    holder("quota-holder", stack.spec(small))
    cases.append(
        Case(
            "nic-quota",
            ("QuotaExceeded",),
            ("Maximum number of ports",),
            lambda: stack.delete(ns, "quota-holder"),
            spec=stack.spec(small, netId=NET_B),
        )
    )

    # 9. bad credentials (wrong token) -> the Secret is fixed
    bad = f"{stack.cloud}-badcreds"
    apply_cloud(kube, bad, sim.url, secret={"token": "not-the-token-0000"})
    extra_clouds.append(bad)
    cases.append(
        Case(
            "bad-credentials",
            ("CredentialsRejected", "CloudNotReady"),
            ("authentication", bad),
            lambda: apply_cloud(kube, bad, sim.url, secret={"token": TOKEN}),
            spec={**stack.spec(seeded(8)), "cloudRef": {"name": bad}},
        )
    )

    # 10. missing Secret -> the Secret is created
    nosecret = f"{stack.cloud}-nosecret"
    apply_cloud(kube, nosecret, sim.url, secret=None, secret_name=f"{nosecret}-credentials")
    extra_clouds.append(nosecret)
    cases.append(
        Case(
            "missing-secret",
            ("CloudNotReady",),
            ("SecretNotFound", f"{SYSTEM_NS}/{nosecret}-credentials"),
            lambda: apply_cloud(kube, nosecret, sim.url, secret=credentials_data("Token", sim.url)),
            cloud_calls=False,
            spec={**stack.spec(seeded(9)), "cloudRef": {"name": nosecret}},
        )
    )

    # 11. EcsCloud missing -> it is created
    later = f"{stack.cloud}-later"
    extra_clouds.append(later)
    cases.append(
        Case(
            "cloud-missing",
            ("CloudNotFound",),
            (later,),
            lambda: apply_cloud(kube, later, sim.url, secret=credentials_data("Token", sim.url)),
            cloud_calls=False,
            spec={**stack.spec(seeded(10)), "cloudRef": {"name": later}},
        )
    )

    # 12. namespace not allowed by the EcsCloud's namespaceSelector -> the namespace is labelled
    picky = f"{stack.cloud}-picky"
    apply_cloud(
        kube,
        picky,
        sim.url,
        secret=credentials_data("Token", sim.url),
        namespaceSelector={"matchLabels": {"ecsnic.io/team": "blue"}},
    )
    extra_clouds.append(picky)
    denied_ns = stack.new_namespace("flt-denied")
    cases.append(
        Case(
            "namespace-not-allowed",
            ("NamespaceNotAllowed",),
            (picky, denied_ns),
            lambda: kube.core.patch_namespace(denied_ns, {"metadata": {"labels": {"ecsnic.io/team": "blue"}}}) and None,
            cloud_calls=False,
            namespace=denied_ns,
            spec={**stack.spec(seeded(11)), "cloudRef": {"name": picky}},
        )
    )

    # 13. endpoint unreachable -> the endpoint comes up
    down_port = free_port()
    unreachable = f"{stack.cloud}-down"
    apply_cloud(kube, unreachable, f"http://127.0.0.1:{down_port}", secret=credentials_data("Token", sim.url))
    extra_clouds.append(unreachable)

    def endpoint_up() -> None:
        other = SimulatorProcess(sim.seed_file, port=down_port)
        other.start()
        spare.append(other)

    cases.append(
        Case(
            "endpoint-unreachable",
            ("CloudNotReady",),
            ("EndpointUnreachable", f"127.0.0.1:{down_port}"),
            endpoint_up,
            cloud_calls=False,
            spec={**stack.spec(seeded(12)), "cloudRef": {"name": unreachable}},
        )
    )
    assert len(cases) >= 10

    try:
        wait_for(lambda: all(stack.is_ready(ns, h) for h in holders), timeout=30, what="holders Ready")
        for case in cases:
            case.namespace = case.namespace or ns
            stack.create(case.namespace, case.name, case.spec)

        # -- every case ends in its specific reason, with a message naming what is wrong ------------------
        failures: list[str] = []
        for case in cases:
            try:
                obj = stack.wait_reason(case.namespace, case.name, case.reasons[0], timeout=40)
            except AssertionError:
                if len(case.reasons) == 1:
                    raise
                obj = stack.wait_reason(case.namespace, case.name, case.reasons[1], timeout=10)
            ready, synced = condition(obj, "Ready"), condition(obj, "Synced")
            assert ready is not None and synced is not None
            if ready["status"] != "False" or synced["status"] != "False":
                failures.append(f"{case.name}: Ready={ready['status']} Synced={synced['status']}")
            for word in case.words:
                if word not in ready["message"]:
                    failures.append(f"{case.name}: message {ready['message']!r} does not name {word!r}")
            # Events are posted in the background, alongside the status write.
            try:
                wait_for(
                    lambda c=case: (
                        set(c.reasons)  # type: ignore[misc]
                        & {r for t, r, _ in stack.events(c.namespace, c.name) if t == "Warning"}
                    ),
                    timeout=10,
                    interval=0.3,
                    what="a Warning Event",
                )
            except AssertionError:
                warnings = [r for t, r, _ in stack.events(case.namespace, case.name) if t == "Warning"]
                failures.append(f"{case.name}: no Warning Event with reason {case.reasons}: {warnings}")
        assert not failures, "\n".join(failures)

        # -- while the causes last: a bounded number of cloud calls --------------------------------------
        window = SPEC_RETRY * 1.5
        before = stack.api_calls()
        time.sleep(window)  # a measurement window, not a wait for a state
        spent = stack.api_calls() - before
        calling = [c for c in cases if c.cloud_calls]
        # A slow retry every SPEC_RETRY (x0.9 jitter): at most 2 attempts in the window, each at most a list for
        # adoption, a list of known ports and the POST (plus the list when the cloud says "in use").
        bound = len(calling) * 2 * 4
        assert spent <= bound, f"{spent} cloud calls in {window:.0f} s by {len(calling)} failing resources"

        # -- fix every cause: all become Ready ------------------------------------------------------------
        for case in cases:
            case.fix()
        for case in cases:
            if case.recreate is not None:
                stack.delete(case.namespace, case.name)
        for case in cases:
            if case.recreate is not None:
                stack.wait_gone(case.namespace, case.name)
                stack.create(case.namespace, case.name, case.recreate)
        not_ready = []
        deadline = time.monotonic() + SPEC_RETRY * 1.1 + 45
        for case in cases:
            try:
                stack.wait_ready(case.namespace, case.name, timeout=max(1.0, deadline - time.monotonic()))
            except AssertionError as exc:
                not_ready.append(f"{case.name}: {exc}")
        assert not not_ready, "\n".join(not_ready)
        assert cloud_condition(kube, bad)["status"] == "True"  # type: ignore[index]
    finally:
        for other in spare:
            other.stop()
        for name in extra_clouds:
            delete_cloud(kube, name)
