"""Operator settings as one typed object, filled from command-line flags and environment variables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

FINALIZER = "ecsnic.io/finalizer"
ANNOTATION_PREFIX = "ecsnic.io"
PAUSED_ANNOTATION = f"{ANNOTATION_PREFIX}/paused"
# Written together with the finalizer, before the first attach call: what the server had then, so a
# crash between the cloud's answer and the status write can be recovered by adoption, never by a duplicate.
INTENT_ANNOTATION = f"{ANNOTATION_PREFIX}/attach-intent"
DEFAULT_CLOUD = "default"


class SettingError(ValueError):
    """A setting's value (flag or environment variable) is not acceptable; the text says which and why."""


# -- value parsers: each takes the raw text and returns the typed value or raises ValueError(reason) ----------


def port(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("not a port number (an integer 0-65535; 0 turns the server off)") from None
    if not 0 <= value <= 65535:
        raise ValueError("not a port number (an integer 0-65535; 0 turns the server off)")
    return value


def seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("not a number of seconds (e.g. 300 or 0.5)") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number of seconds greater than 0")
    return value


def count(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("not a whole number (e.g. 32)") from None
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("not a boolean (true or false)")


def text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    """Case-insensitive choice, normalised to how ``choices`` spell it (JSON -> json, debug -> DEBUG)."""

    def parse(raw: str) -> str:
        for choice in choices:
            if raw.strip().lower() == choice.lower():
                return choice
        raise ValueError(f"must be one of {', '.join(choices)}")

    parse.__name__ = "|".join(choices)
    return parse


@dataclass(frozen=True)
class Setting:
    """One knob of `ecs-nic-operator run`: its flag, its environment variable, how its text is parsed and
    checked, its default and what it means. cli.py builds the parser and `--help` from these."""

    name: str  # the attribute (argparse dest)
    flag: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = ""
    switch: bool = False  # a flag without a value (its environment variable takes true/false)

    def from_env(self, environ: Mapping[str, str] | None = None) -> Any:
        """The environment's value, parsed; the default when unset or empty."""
        raw = (os.environ if environ is None else environ).get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise SettingError(f"{self.env}={raw!r}: {exc}") from None


#: Every setting of `ecs-nic-operator run`, in `--help` order. Add new ones here (flag, env, parser, default,
#: help): the parser, `--help`, the environment fallback and its validation follow.
SETTINGS: list[Setting] = [
    Setting(
        "metrics_port",
        "--metrics-port",
        "ECSNIC_METRICS_PORT",
        port,
        0,
        "serve Prometheus /metrics on this port (0: off)",
        "PORT",
    ),
    Setting(
        "health_port",
        "--health-port",
        "ECSNIC_HEALTH_PORT",
        port,
        0,
        "serve /healthz (liveness) and /readyz (readiness) on this port (0: off)",
        "PORT",
    ),
    Setting(
        "bind_address",
        "--bind-address",
        "ECSNIC_BIND_ADDRESS",
        text,
        "0.0.0.0",
        "address the metrics and health servers listen on",
        "ADDR",
    ),
    Setting(
        "resync_period",
        "--resync-period",
        "ECSNIC_RESYNC_PERIOD",
        seconds,
        300.0,
        "seconds between drift checks of each server (one list call per server, jittered) and re-reads of "
        "each EcsCloud's Secret",
        "S",
    ),
    Setting(
        "leader_elect",
        "--leader-elect",
        "ECSNIC_LEADER_ELECT",
        boolean,
        False,
        "one of several replicas: act only while holding a coordination.k8s.io/v1 Lease, stand by otherwise",
        switch=True,
    ),
    Setting(
        "leader_election_namespace",
        "--leader-election-namespace",
        "ECSNIC_LEADER_ELECTION_NAMESPACE",
        text,
        "",
        "namespace of the Lease (default: POD_NAMESPACE, else the service account's namespace)",
        "NS",
    ),
    Setting(
        "leader_election_id",
        "--leader-election-id",
        "ECSNIC_LEADER_ELECTION_ID",
        text,
        "ecs-nic-operator",
        "name of the Lease the replicas share",
        "NAME",
    ),
    Setting(
        "leader_lease_duration",
        "--leader-lease-duration",
        "ECSNIC_LEADER_LEASE_DURATION",
        seconds,
        15.0,
        "seconds a standby waits, by its own clock, after the Lease last changed before taking it",
        "S",
    ),
    Setting(
        "leader_renew_deadline",
        "--leader-renew-deadline",
        "ECSNIC_LEADER_RENEW_DEADLINE",
        seconds,
        10.0,
        "seconds after its last confirmed renewal that a leader stops acting and exits (below the lease)",
        "S",
    ),
    Setting(
        "leader_retry_period",
        "--leader-retry-period",
        "ECSNIC_LEADER_RETRY_PERIOD",
        seconds,
        2.0,
        "seconds between renewals (leader) and looks at the Lease (standby)",
        "S",
    ),
    Setting(
        "log_level",
        "--log-level",
        "ECSNIC_LOG_LEVEL",
        one_of("DEBUG", "INFO", "WARNING", "ERROR"),
        "INFO",
        "log level",
        "LEVEL",
    ),
    Setting(
        "log_format",
        "--log-format",
        "ECSNIC_LOG_FORMAT",
        one_of("text", "json"),
        "text",
        "text for people, json for log pipelines (carries namespace, name, request_id)",
        "FORMAT",
    ),
    Setting(
        "spec_retry",
        "--spec-retry",
        "ECSNIC_SPEC_RETRY",
        seconds,
        300.0,
        "seconds before retrying an error a person must fix (quota, network, IP in use, credentials)",
        "S",
    ),
    Setting(
        "backoff_min",
        "--backoff-min",
        "ECSNIC_BACKOFF_MIN",
        seconds,
        1.0,
        "first backoff, in seconds, after a transient cloud error (doubles per attempt, jittered)",
        "S",
    ),
    Setting(
        "backoff_max",
        "--backoff-max",
        "ECSNIC_BACKOFF_MAX",
        seconds,
        120.0,
        "longest backoff, in seconds, after transient cloud errors (Retry-After wins)",
        "S",
    ),
    Setting(
        "dependency_retry",
        "--dependency-retry",
        "ECSNIC_DEPENDENCY_RETRY",
        seconds,
        60.0,
        "seconds between looks while an EcsCloud, Node or allowed namespace is missing",
        "S",
    ),
    Setting(
        "stuck_after",
        "--stuck-after",
        "ECSNIC_STUCK_AFTER",
        seconds,
        300.0,
        "seconds before a port still not ACTIVE after its attach (AttachStuck), or still listed after the cloud "
        "accepted its detach (DetachStuck), is reported",
        "S",
    ),
    Setting(
        "stuck_retry",
        "--stuck-retry",
        "ECSNIC_STUCK_RETRY",
        seconds,
        60.0,
        "seconds between looks at a stuck attach or detach once reported (a stuck detach is sent again each time)",
        "S",
    ),
    Setting("cloud_timeout", "--cloud-timeout", "ECSNIC_CLOUD_TIMEOUT", seconds, 10.0, "seconds per cloud call", "S"),
    Setting(
        "workers",
        "--workers",
        "ECSNIC_WORKERS",
        count,
        512,
        "the most reconciles (and cloud calls) in flight: a memory cap; below it the queue follows each "
        "EcsCloud's rateLimit at the latency it shows (32 or less: a fixed pool of that size)",
        "N",
    ),
    Setting(
        "health_interval",
        "--health-interval",
        "ECSNIC_HEALTH_INTERVAL",
        seconds,
        5.0,
        "seconds between health probes of the API server (readiness fails after 3 missed probes)",
        "S",
    ),
    Setting(
        "health_stale_after",
        "--health-stale-after",
        "ECSNIC_HEALTH_STALE_AFTER",
        seconds,
        None,
        "seconds without an API server answer before /readyz fails (default: 3 probe intervals)",
        "S",
    ),
    Setting(
        "health_grace",
        "--health-grace",
        "ECSNIC_HEALTH_GRACE",
        seconds,
        None,
        "seconds a watch may lag the API server before /readyz fails (default: 2 intervals, at least 5)",
        "S",
    ),
    Setting(
        "health_stuck_after",
        "--health-stuck-after",
        "ECSNIC_HEALTH_STUCK_AFTER",
        seconds,
        300.0,
        "seconds a watch may lag a reachable API server before /healthz fails (a restart helps then)",
        "S",
    ),
    Setting(
        "operator_namespace",
        "--operator-namespace",
        "ECSNIC_OPERATOR_NAMESPACE",
        text,
        "",
        "namespace of the operator's own state, the intent signing key Secret (default: POD_NAMESPACE, else the "
        "in-cluster service account's, else ecs-nic-system)",
        "NS",
    ),
]
BY_NAME = {s.name: s for s in SETTINGS}


def from_env(name: str) -> Any:
    """The value of setting ``name`` from the environment (validated), or its default."""
    return BY_NAME[name].from_env()


_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _own_namespace() -> str:
    """--operator-namespace / ECSNIC_OPERATOR_NAMESPACE, else POD_NAMESPACE, else the in-cluster service account's,
    else ecs-nic-system."""
    configured = from_env("operator_namespace") or os.environ.get("POD_NAMESPACE")
    if configured:
        return str(configured)
    try:
        with open(_SA_NAMESPACE) as f:
            return f.read().strip() or "ecs-nic-system"
    except OSError:
        return "ecs-nic-system"


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    # Drift checks: one list call per server every period (jittered per server, not per attachment).
    resync_period: float = field(default_factory=lambda: from_env("resync_period"))
    # Following a DOWN port until ACTIVE: the first look comes after the learnt activation time, later
    # ones back off from poll_min to poll_max.
    poll_min: float = 0.5
    poll_max: float = 30.0
    # Errors the user must fix (spec, quota, credentials): slow retries, the cloud side may be fixed later.
    spec_retry: float = field(default_factory=lambda: from_env("spec_retry"))
    # Transient cloud errors: exponential backoff with jitter between these bounds (Retry-After wins).
    backoff_min: float = field(default_factory=lambda: from_env("backoff_min"))
    backoff_max: float = field(default_factory=lambda: from_env("backoff_max"))
    # Waiting on Kubernetes-side prerequisites (EcsCloud missing or not Ready, Node missing).
    dependency_retry: float = field(default_factory=lambda: from_env("dependency_retry"))
    # Operations the cloud accepted and never finishes (reconcile/stuck.py): when to say so, how often to look.
    stuck_after: float = field(default_factory=lambda: from_env("stuck_after"))
    stuck_retry: float = field(default_factory=lambda: from_env("stuck_retry"))
    workers: int = field(default_factory=lambda: from_env("workers"))
    cloud_timeout: float = field(default_factory=lambda: from_env("cloud_timeout"))
    default_qps: float = 10.0
    default_burst: int = 20
    metrics_port: int = 0
    health_port: int = 0
    # One active replica by a coordination.k8s.io/v1 Lease (leader.py); the namespace is resolved at start.
    leader_elect: bool = False
    leader_election_namespace: str = ""
    leader_election_id: str = "ecs-nic-operator"
    # client-go's defaults; shorter only for tests (each must stay below the one before it).
    leader_lease_duration: float = field(default_factory=lambda: from_env("leader_lease_duration"))
    leader_renew_deadline: float = field(default_factory=lambda: from_env("leader_renew_deadline"))
    leader_retry_period: float = field(default_factory=lambda: from_env("leader_retry_period"))
    log_format: str = "text"
    log_level: str = "INFO"
    # Where the operator keeps its own state (the intent signing key): the namespace it runs in.
    operator_namespace: str = field(default_factory=lambda: _own_namespace())


def settings_from(values: Mapping[str, Any], **fixed: Any) -> Settings:
    """Settings from resolved command-line values: every `Setting` that is a `Settings` field is handed on by
    name, so a new setting reaches the operator without a line in the CLI. None or "" (an unset text setting
    such as --operator-namespace) keeps the field's own default, which may be worked out at start."""
    names = {f.name for f in fields(Settings)} & set(BY_NAME)
    given = {name: values[name] for name in names if values.get(name) not in (None, "")}
    return Settings(**{**given, **fixed})
