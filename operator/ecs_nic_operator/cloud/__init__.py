"""Async client for the ECS/Nova ``os-interface`` NIC API, with the auth schemes EcsCloud allows."""

from ecs_nic_operator.cloud.auth import (
    AkSkAuth,
    CredentialsError,
    KeystonePasswordAuth,
    TokenAuth,
    auth_from_secret,
)
from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.errors import (
    AuthError,
    BadRequest,
    CloudError,
    CloudUnavailable,
    Forbidden,
    InUse,
    NotFound,
    QuotaExceeded,
    RetryableError,
    ServerBusy,
    SpecError,
    Throttled,
)
from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.cloud.ratelimit import TokenBucket

__all__ = [
    "AkSkAuth",
    "AuthError",
    "BadRequest",
    "CloudError",
    "CloudUnavailable",
    "CredentialsError",
    "EcsClient",
    "FixedIp",
    "Forbidden",
    "InUse",
    "InterfaceAttachment",
    "KeystonePasswordAuth",
    "NotFound",
    "QuotaExceeded",
    "RetryableError",
    "ServerBusy",
    "SpecError",
    "Throttled",
    "TokenAuth",
    "TokenBucket",
    "auth_from_secret",
]
