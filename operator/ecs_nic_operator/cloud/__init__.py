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
    ApiNotFound,
    AuthError,
    BadRequest,
    CloudError,
    CloudInternalError,
    CloudUnavailable,
    Forbidden,
    InUse,
    InvalidIp,
    NotFound,
    QuotaExceeded,
    RetryableError,
    ServerBusy,
    ServerLocked,
    SpecError,
    SubnetExhausted,
    Throttled,
)
from ecs_nic_operator.cloud.models import AddressPair, FixedIp, InterfaceAttachment, Job, Port
from ecs_nic_operator.cloud.network import ANY_SOURCE, NetworkClient
from ecs_nic_operator.cloud.ratelimit import TokenBucket

__all__ = [
    "ANY_SOURCE",
    "AddressPair",
    "AkSkAuth",
    "ApiNotFound",
    "AuthError",
    "BadRequest",
    "CloudError",
    "CloudInternalError",
    "CloudUnavailable",
    "CredentialsError",
    "EcsClient",
    "FixedIp",
    "Forbidden",
    "InUse",
    "InterfaceAttachment",
    "InvalidIp",
    "Job",
    "KeystonePasswordAuth",
    "NetworkClient",
    "NotFound",
    "Port",
    "QuotaExceeded",
    "RetryableError",
    "ServerBusy",
    "ServerLocked",
    "SpecError",
    "SubnetExhausted",
    "Throttled",
    "TokenAuth",
    "TokenBucket",
    "auth_from_secret",
]
