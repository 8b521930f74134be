"""What each cloud error means for the user (a condition reason) and for the retry (a delay)."""

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


def backoff(settings: Settings, attempt: int) -> float:
    """Exponential backoff with full jitter around the midpoint (never zero, never above the cap)."""
    base = min(settings.backoff_max, settings.backoff_min * 2 ** min(attempt, 16))
    return random.uniform(base / 2, base)


def classify(exc: errors.CloudError, settings: Settings, attempt: int) -> Verdict:
    text = str(exc)
    if isinstance(exc, errors.RetryableError):
        delay = backoff(settings, attempt)
        if exc.retry_after is not None:
            delay = max(exc.retry_after, 0.1) * random.uniform(1.0, 1.2)
        reason = {
            errors.Throttled: Reason.THROTTLED,
            errors.ServerBusy: Reason.SERVER_BUSY,
        }.get(type(exc), Reason.CLOUD_UNAVAILABLE)
        return Verdict(reason, text, delay, blocks_ready=False)
    slow = settings.spec_retry * random.uniform(0.9, 1.1)
    if isinstance(exc, errors.AuthError):
        return Verdict(Reason.CREDENTIALS_REJECTED, text, slow, blocks_ready=True)
    if isinstance(exc, errors.NotFound):
        reason = {
            "server": Reason.SERVER_NOT_FOUND,
            "network": Reason.NETWORK_NOT_FOUND,
            "port": Reason.PORT_NOT_FOUND,
        }.get(exc.what or "", Reason.INVALID_REQUEST)
        return Verdict(reason, text, slow, blocks_ready=True)
    if isinstance(exc, errors.InUse):
        # "Fixed IP address X is already in use on instance port Y" is about the IP, though it names a port.
        reason = Reason.IP_IN_USE if _NAMES_IP.search(exc.message) else Reason.PORT_IN_USE
        return Verdict(reason, text, slow, blocks_ready=True)
    if isinstance(exc, errors.QuotaExceeded):
        return Verdict(Reason.QUOTA_EXCEEDED, text, slow, blocks_ready=True)
    return Verdict(Reason.INVALID_REQUEST, text, slow, blocks_ready=True)
