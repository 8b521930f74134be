"""Prometheus metrics, on the default registry so ``prometheus_client.start_http_server`` serves them.

Counters and histograms are updated where things happen (cloud client, controller). What describes the
current state — attachments by port state and by condition, Kubernetes writes, the work queue — is read
from the controller's in-memory objects at scrape time by a custom collector, so nothing has to keep a
gauge in step with every change.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Cloud calls are tens of ms to seconds; the top buckets catch timeouts (default 10 s).
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CLOUD_CALLS = Counter(
    "ecsnic_cloud_calls_total",
    "Calls to the ECS/Nova NIC API, by operation and outcome (ok or the error class name).",
    ["operation", "outcome"],
)
CLOUD_LATENCY = Histogram(
    "ecsnic_cloud_call_duration_seconds",
    "Duration of ECS/Nova NIC API calls, excluding time spent waiting for the client-side rate limit.",
    ["operation"],
    buckets=_CALL_BUCKETS,
)
RATE_LIMIT_WAIT = Histogram(
    "ecsnic_rate_limit_wait_seconds",
    "Time requests waited for the per-cloud client-side rate limit.",
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
RECONCILES = Counter(
    "ecsnic_reconciles_total",
    "Reconciles of EcsNicAttachment resources, by outcome.",
    ["outcome"],
)
OPERATOR_INFO = Info("ecsnic_operator", "Version and build information of the running operator.")
LEADER = Gauge(
    "ecsnic_leader",
    "1 while this replica acts (holds the leader lease, or runs without --leader-elect); 0 while it stands by.",
)
LEADER.set(1)

RECONCILE_DURATION = Histogram(
    "ecsnic_reconcile_duration_seconds",
    "Time spent in one reconcile of an EcsNicAttachment, cloud calls included.",
)
ATTACHES = Counter(
    "ecsnic_attaches_total",
    "NICs attached, by how: created by a POST, or adopted after an interrupted attach.",
    ["how"],
)
ROLLED_BACK = Counter(
    "ecsnic_attach_rollbacks_total",
    "NICs detached again because their resource was deleted while the attach was under way.",
)
DRIFT_REPAIRS = Counter(
    "ecsnic_drift_repairs_total",
    "NICs found detached out of band and attached again.",
)
CLOUD_CHECKS = Counter(
    "ecsnic_cloud_checks_total",
    "EcsCloud checks finished, by cloud and verdict (reason); superseded: the spec changed during the check, "
    "whose verdict was then dropped.",
    ["cloud", "outcome"],
)


class CloudCallMetrics:
    """The cloud client's observer (cloud/observe.py): its calls and rate-limit waits, as Prometheus metrics."""

    def call(self, operation: str, outcome: str, seconds: float) -> None:
        CLOUD_CALLS.labels(operation, outcome).inc()
        CLOUD_LATENCY.labels(operation).observe(seconds)

    def waited(self, seconds: float) -> None:
        RATE_LIMIT_WAIT.observe(seconds)


def _snapshot(values: Any) -> list[Any]:
    # The scrape runs in prometheus-client's thread while the event loop changes the dict; copying is a
    # single C call under the GIL, retried in the unlikely case the dict was resized under it.
    for _ in range(5):
        try:
            return list(values())
        except RuntimeError:
            continue
    return []


class ControllerCollector(Collector):
    """Attachments by state and condition, Kubernetes writes and queue depth, read at scrape time."""

    def __init__(self, source: Any = lambda: None) -> None:
        self.source = source  # set by whoever runs the controller (handlers.startup): no import back

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: families depend on what the controller holds

    def collect(self) -> Iterable[Metric]:
        controller = self.source()
        states: Tally[str] = Tally()
        conds: Tally[tuple[str, str, str]] = Tally()
        deleting = 0
        writes: dict[str, int] = {}
        depth = 0
        if controller is not None:
            for obj in _snapshot(controller.objects.values):
                states[obj.port_state or NOT_ATTACHED] += 1
                deleting += bool(obj.deleting)
                for summary in obj.conditions_summary:
                    conds[summary] += 1
            writes = dict(_snapshot(controller.kube.writes.items))
            depth = len(controller.queue)
        by_state = GaugeMetricFamily(
            "ecsnic_attachments",
            "EcsNicAttachment resources known to this operator, by the port state the cloud reports "
            f"({NOT_ATTACHED}: no port yet).",
            labels=["state"],
        )
        for state, n in sorted(states.items()):
            by_state.add_metric([state], n)
        yield by_state
        by_condition = GaugeMetricFamily(
            "ecsnic_attachment_conditions",
            "EcsNicAttachment resources by condition type, status and reason.",
            labels=["type", "status", "reason"],
        )
        for (type_, status_, reason), n in sorted(conds.items()):
            by_condition.add_metric([type_, status_, reason], n)
        yield by_condition
        yield GaugeMetricFamily(
            "ecsnic_attachments_deleting", "EcsNicAttachment resources being deleted (detach pending).", deleting
        )
        kube_writes = CounterMetricFamily(
            "ecsnic_kube_writes", "Writes to the Kubernetes API, by target.", labels=["target"]
        )
        for target, n in sorted(writes.items()):
            kube_writes.add_metric([target], n)
        yield kube_writes
        yield GaugeMetricFamily("ecsnic_workqueue_depth", "Keys waiting in the work queue.", depth)


NOT_ATTACHED = "NotAttached"
COLLECTOR = ControllerCollector()
REGISTRY.register(COLLECTOR)
RESUMED = Counter(
    "ecsnic_attachments_reconciled",
    "Attachments this process has reconciled at least once (after a restart: how many have been resumed).",
)
