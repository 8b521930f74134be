"""Prometheus metrics, on the default registry so ``prometheus_client.start_http_server`` serves them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

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
ATTACHMENTS = Gauge(
    "ecsnic_attachments",
    "EcsNicAttachment resources known to this operator, by state.",
    ["state"],
)
OPERATOR_INFO = Info("ecsnic_operator", "Version and build information of the running operator.")

RECONCILE_DURATION = Histogram(
    "ecsnic_reconcile_duration_seconds",
    "Time spent in one reconcile of an EcsNicAttachment, cloud calls included.",
)
ATTACHES = Counter(
    "ecsnic_attaches_total",
    "NICs attached, by how: created by a POST, or adopted after an interrupted attach.",
    ["how"],
)
DRIFT_REPAIRS = Counter(
    "ecsnic_drift_repairs_total",
    "NICs found detached out of band and attached again.",
)
KUBE_WRITES = Counter(
    "ecsnic_kube_writes_total",
    "Writes to the Kubernetes API, by target.",
    ["target"],
)
RESUMED = Counter(
    "ecsnic_attachments_reconciled",
    "Attachments this process has reconciled at least once (after a restart: how many have been resumed).",
)
