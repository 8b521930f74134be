"""Operator settings as one typed object, filled from command-line flags and environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

FINALIZER = "ecsnic.io/finalizer"
ANNOTATION_PREFIX = "ecsnic.io"
PAUSED_ANNOTATION = f"{ANNOTATION_PREFIX}/paused"
# Written together with the finalizer, before the first attach call: what the server had then, so a
# crash between the cloud's answer and the status write can be recovered by adoption, never by a duplicate.
INTENT_ANNOTATION = f"{ANNOTATION_PREFIX}/attach-intent"
DEFAULT_CLOUD = "default"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    # Drift checks: one list call per server every period (jittered per server, not per attachment).
    resync_period: float = field(default_factory=lambda: _env_float("ECSNIC_RESYNC_PERIOD", 300.0))
    # Following a DOWN port until ACTIVE: the first look comes after the learnt activation time, later
    # ones back off from poll_min to poll_max.
    poll_min: float = 0.5
    poll_max: float = 30.0
    # Errors the user must fix (spec, quota, credentials): slow retries, the cloud side may be fixed later.
    spec_retry: float = field(default_factory=lambda: _env_float("ECSNIC_SPEC_RETRY", 300.0))
    # Transient cloud errors: exponential backoff with jitter between these bounds (Retry-After wins).
    backoff_min: float = field(default_factory=lambda: _env_float("ECSNIC_BACKOFF_MIN", 1.0))
    backoff_max: float = field(default_factory=lambda: _env_float("ECSNIC_BACKOFF_MAX", 120.0))
    # Waiting on Kubernetes-side prerequisites (EcsCloud missing or not Ready, Node missing).
    dependency_retry: float = field(default_factory=lambda: _env_float("ECSNIC_DEPENDENCY_RETRY", 60.0))
    # The most reconciles (and so cloud calls) in flight at once: a memory cap, not the working size. Within it
    # the work queue runs what the clouds' rate limits can keep busy at their observed latency (workqueue.py).
    workers: int = field(default_factory=lambda: int(_env_float("ECSNIC_WORKERS", 512)))
    cloud_timeout: float = field(default_factory=lambda: _env_float("ECSNIC_CLOUD_TIMEOUT", 10.0))
    default_qps: float = 10.0
    default_burst: int = 20
    metrics_port: int = 0
    health_port: int = 0
    peering: bool = False
    log_format: str = "text"
    log_level: str = "INFO"
