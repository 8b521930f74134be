"""Ready / Synced conditions in the shape of Kubernetes' API conventions (metav1.Condition)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
SYNCED = "Synced"


class Reason:
    """CamelCase reasons; the README's troubleshooting table explains each."""

    # Ready
    ACTIVE = "Active"
    ATTACHING = "Attaching"
    PORT_DOWN = "PortNotActive"
    DETACHING = "Detaching"
    NIC_DETACHED = "NicDetachedOutOfBand"
    # Synced / errors
    RECONCILE_SUCCESS = "ReconcileSuccess"
    PAUSED = "ReconcilePaused"
    CLOUD_NOT_FOUND = "CloudNotFound"
    CLOUD_NOT_READY = "CloudNotReady"
    NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
    NODE_NOT_FOUND = "NodeNotFound"
    NODE_NO_PROVIDER_ID = "NodeHasNoProviderID"
    SERVER_NOT_FOUND = "ServerNotFound"
    NETWORK_NOT_FOUND = "NetworkNotFound"
    PORT_NOT_FOUND = "PortNotFound"
    PORT_IN_USE = "PortInUse"
    IP_IN_USE = "IpInUse"
    INVALID_REQUEST = "InvalidRequest"
    QUOTA_EXCEEDED = "QuotaExceeded"
    CREDENTIALS_REJECTED = "CredentialsRejected"
    CLOUD_UNAVAILABLE = "CloudUnavailable"
    THROTTLED = "Throttled"
    SERVER_BUSY = "ServerBusy"
    DETACH_BLOCKED = "DetachBlocked"
    # Ownership (docs/ownership.md)
    PORT_CLAIMED = "PortClaimed"
    INTENT_UNVERIFIABLE = "IntentUnverifiable"
    INTENT_KEY_UNAVAILABLE = "IntentKeyUnavailable"
    ADOPTION_AMBIGUOUS = "AdoptionAmbiguous"
    # Huawei's codes and long-running operations (reconcile/errors.py, stuck.py, capacity.py)
    SERVER_LOCKED = "ServerLocked"
    SUBNET_EXHAUSTED = "SubnetExhausted"
    INVALID_IP = "InvalidIp"
    API_NOT_FOUND = "ApiNotFound"
    NIC_LIMIT_REACHED = "NicLimitReached"
    ATTACH_STUCK = "AttachStuck"
    DETACH_STUCK = "DetachStuck"
    # Huawei's v1 API and port properties (reconcile/jobs.py, reconcile/ports.py)
    UNSUPPORTED_BY_API = "UnsupportedByApi"
    JOB_RUNNING = "JobRunning"
    ATTACH_UNCONFIRMED = "AttachUnconfirmed"
    PORT_UPDATE_FAILED = "PortUpdateFailed"
    # EcsCloud
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_FORBIDDEN = "SecretForbidden"
    CREDENTIALS_INVALID = "CredentialsInvalid"
    ENDPOINT_UNREACHABLE = "EndpointUnreachable"
    ENDPOINT_INVALID = "EndpointInvalid"
    CONNECTED = "Connected"
    CHECK_FAILED = "CheckFailed"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(existing: list[dict[str, Any]], wanted: list[Condition], generation: int) -> list[dict[str, Any]]:
    """New conditions list; lastTransitionTime moves only when a condition's status changes."""
    by_type = {c.get("type"): c for c in existing}
    result = [c for c in existing if c.get("type") not in {w.type for w in wanted}]
    for cond in wanted:
        status = "True" if cond.status else "False"
        old = by_type.get(cond.type)
        changed = old is None or old.get("status") != status
        result.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message[:1024],
                "lastTransitionTime": now() if changed or old is None else old.get("lastTransitionTime", now()),
                "observedGeneration": generation,
            }
        )
    order = {READY: 0, SYNCED: 1}
    result.sort(key=lambda c: order.get(str(c.get("type")), 9))
    return result


def get(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None
