"""What each cloud error means for the user (a condition reason) and for the retry (a delay).

Three paces: transient errors back off from ``backoff_min`` (seconds) up to ``backoff_max``, or
wait what the cloud asked for (``retry_after``: a Retry-After header, or about 60 s for Huawei's
``Ecs.0603`` "try again 1 minute later"); errors only a person can fix retry every ``spec_retry``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.config import Settings

_NAMES_IP = re.compile(r"\bip\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: str
    message: str
    delay: float
    blocks_ready: bool  # the NIC is not usable (spec/credentials) rather than merely not confirmed
    # The failed call may have changed the cloud (a lost reply, an internal error): whoever retries a
    # create must first look for its result. The controller's attach intent already makes it list.
    may_have_taken_effect: bool = False


def backoff(settings: Settings, attempt: int) -> float:
    """Exponential backoff with full jitter around the midpoint (never zero, never above the cap)."""
    base = min(settings.backoff_max, settings.backoff_min * 2 ** min(attempt, 16))
    return random.uniform(base / 2, base)


def _retryable_reason(exc: errors.RetryableError) -> str:
    if isinstance(exc, errors.Throttled):
        return Reason.THROTTLED
    if isinstance(exc, errors.ServerBusy):
        return Reason.SERVER_BUSY
    return Reason.CLOUD_UNAVAILABLE


def classify(exc: errors.CloudError, settings: Settings, attempt: int) -> Verdict:
    text = str(exc)
    if isinstance(exc, errors.RetryableError):
        delay = backoff(settings, attempt)
        if exc.retry_after is not None:
            delay = max(exc.retry_after, 0.1) * random.uniform(1.0, 1.2)
        return Verdict(
            _retryable_reason(exc), text, delay, blocks_ready=False, may_have_taken_effect=exc.may_have_taken_effect
        )
    slow = settings.spec_retry * random.uniform(0.9, 1.1)
    if isinstance(exc, errors.AuthError):
        return Verdict(Reason.CREDENTIALS_REJECTED, text, slow, blocks_ready=True)
    if isinstance(exc, errors.ServerLocked):
        message = (
            f"{text}: the server is locked, and no NIC can be attached or detached until it is unlocked "
            f"(in the console, or with the server's unlock action); retrying every {settings.spec_retry:.0f} s"
        )
        return Verdict(Reason.SERVER_LOCKED, message, slow, blocks_ready=True)
    if isinstance(exc, errors.ApiNotFound):
        message = (
            f"{text}: the endpoint does not serve this API (not a missing server); check the EcsCloud's "
            "endpoint and region"
        )
        return Verdict(Reason.API_NOT_FOUND, message, slow, blocks_ready=True)
    if isinstance(exc, errors.NotFound):
        reason = {
            "server": Reason.SERVER_NOT_FOUND,
            "network": Reason.NETWORK_NOT_FOUND,
            "port": Reason.PORT_NOT_FOUND,
        }.get(exc.what or "", Reason.INVALID_REQUEST)
        return Verdict(reason, text, slow, blocks_ready=True)
    if isinstance(exc, errors.InUse):
        if exc.what is not None:
            reason = Reason.IP_IN_USE if exc.what == "ip" else Reason.PORT_IN_USE
        else:
            # "Fixed IP address X is already in use on instance port Y" is about the IP, though it names a port.
            reason = Reason.IP_IN_USE if _NAMES_IP.search(exc.message) else Reason.PORT_IN_USE
        return Verdict(reason, text, slow, blocks_ready=True)
    if isinstance(exc, errors.QuotaExceeded):
        return Verdict(Reason.QUOTA_EXCEEDED, text, slow, blocks_ready=True)
    if isinstance(exc, errors.SubnetExhausted):
        return Verdict(Reason.SUBNET_EXHAUSTED, f"{text}: free addresses in the subnet or use another", slow, True)
    if isinstance(exc, errors.InvalidIp):
        return Verdict(Reason.INVALID_IP, f"{text}: the fixed IP must lie inside the network's subnet", slow, True)
    return Verdict(Reason.INVALID_REQUEST, text, slow, blocks_ready=True)
