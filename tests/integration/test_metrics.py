"""The operator's /metrics endpoint: scraped before and after an attach/detach, the figures move."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import NET_A
from tests.integration.kube import Kube, condition, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(op: OperatorProcess) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(op.metrics()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_metrics_move_with_an_attach_and_a_detach(
    kube: Kube, operator: OperatorProcess, simulator: SimulatorProcess, namespace: str, server: str
) -> None:
    before = scrape(operator)
    assert total(before, "ecsnic_operator_info", version="0.1.0") == 1

    kube.create_attachment(namespace, "nic", {"serverId": server, "netId": NET_A})

    def ready() -> bool:
        cond = condition(kube.get_attachment(namespace, "nic"), "Ready")
        return bool(cond and cond["status"] == "True")

    wait_for(ready, timeout=30, what="Ready")
    during = scrape(operator)
    # Cloud calls by operation and outcome, with latency histograms.
    assert value(during, "ecsnic_cloud_calls_total", operation="attach", outcome="ok") >= 1 + value(
        before, "ecsnic_cloud_calls_total", operation="attach", outcome="ok"
    )
    assert value(during, "ecsnic_cloud_call_duration_seconds_count", operation="attach") > value(
        before, "ecsnic_cloud_call_duration_seconds_count", operation="attach"
    )
    assert value(during, "ecsnic_cloud_call_duration_seconds_bucket", operation="attach", le="+Inf") > 0
    # Every cloud request went through the rate limiter.
    assert value(during, "ecsnic_rate_limit_wait_seconds_count") > value(before, "ecsnic_rate_limit_wait_seconds_count")
    # Reconciles by outcome.
    assert value(during, "ecsnic_reconciles_total", outcome="ok") > value(
        before, "ecsnic_reconciles_total", outcome="ok"
    )
    # Attachments by state and condition, read from the controller at scrape time.
    assert value(during, "ecsnic_attachments", state="ACTIVE") >= 1 + value(
        before, "ecsnic_attachments", state="ACTIVE"
    )
    ready_true = {"type": "Ready", "status": "True", "reason": "Active"}
    assert value(during, "ecsnic_attachment_conditions", **ready_true) >= 1 + value(
        before, "ecsnic_attachment_conditions", **ready_true
    )
    # Kubernetes writes: the intent+finalizer patch and the status patches.
    assert value(during, "ecsnic_kube_writes_total", target="attachment") >= 1 + value(
        before, "ecsnic_kube_writes_total", target="attachment"
    )
    assert value(during, "ecsnic_kube_writes_total", target="attachment_status") >= 1 + value(
        before, "ecsnic_kube_writes_total", target="attachment_status"
    )
    assert "ecsnic_workqueue_depth" in {name for name, _ in during}

    kube.delete_attachment(namespace, "nic")
    wait_for(lambda: not kube.attachment_exists(namespace, "nic"), timeout=30, what="deleted")
    wait_for(lambda: simulator.ports_of(server) == [], timeout=10, what="detached")

    def gone_from_gauges() -> bool:
        after = scrape(operator)
        return value(after, "ecsnic_attachments", state="ACTIVE") == value(before, "ecsnic_attachments", state="ACTIVE")

    wait_for(gone_from_gauges, timeout=10, what="the deleted attachment leaving the state gauge")
    after = scrape(operator)
    assert value(after, "ecsnic_cloud_calls_total", operation="detach", outcome="ok") >= 1 + value(
        before, "ecsnic_cloud_calls_total", operation="detach", outcome="ok"
    )
