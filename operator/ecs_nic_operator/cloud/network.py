"""Async client for the Neutron-compatible port API (``/v2.0/ports/{id}``) on an EcsCloud's
``spec.networkEndpoint``: Huawei's VPC endpoint or an OpenStack Neutron. It holds the port properties of a NIC
(security groups, allowed address pairs, port security), which the compute API cannot change.

Built on the same ``ApiClient`` as the compute client: same auth (AK/SK signing, tokens), proxies, TLS, the
leader fence, and, given the same limiter, the same rate-limit ceiling per EcsCloud. No retries here either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import httpx

from ecs_nic_operator.cloud.client import ApiClient, ClientOptions, _check_id
from ecs_nic_operator.cloud.errors import CloudError, request_id_of
from ecs_nic_operator.cloud.models import AddressPair, Port

# Huawei's VPC turns source/destination check off for a port whose allowed address pairs hold this one.
ANY_SOURCE = "1.1.1.1/0"


class NetworkClient(ApiClient):
    def __init__(self, endpoint: str, auth: httpx.Auth, **options: Unpack[ClientOptions]) -> None:
        super().__init__(endpoint, auth, what="network endpoint", **options)
        self._ports = f"{self.endpoint}/v2.0/ports"

    def __repr__(self) -> str:
        return f"NetworkClient(endpoint={self.endpoint!r})"

    def _port(self, op: str, response: httpx.Response) -> Port:
        raw = self._parse(op, response, "port")
        try:
            return Port.from_api(raw)
        except ValueError as exc:
            raise CloudError(
                op, f"malformed port: {exc}", status=response.status_code, request_id=request_id_of(response.headers)
            ) from None

    async def show_port(self, port_id: str) -> Port:
        op = "show_port"
        url = f"{self._ports}/{_check_id('port ID', port_id)}"
        return self._port(op, await self._call(op, "GET", url, "", ok=frozenset({200}), not_found_what="port"))

    async def update_port(
        self,
        port_id: str,
        *,
        security_groups: Sequence[str] | None = None,
        allowed_address_pairs: Sequence[AddressPair] | None = None,
        port_security_enabled: bool | None = None,
    ) -> Port:
        """``PUT /v2.0/ports/{id}`` with only the properties given (None: left as they are)."""
        body: dict[str, Any] = {}
        if security_groups is not None:
            body["security_groups"] = [_check_id("security group ID", g) for g in security_groups]
        if allowed_address_pairs is not None:
            body["allowed_address_pairs"] = [p.to_api() for p in allowed_address_pairs]
        if port_security_enabled is not None:
            body["port_security_enabled"] = port_security_enabled
        if not body:
            raise ValueError("nothing to update")
        op = "update_port"
        url = f"{self._ports}/{_check_id('port ID', port_id)}"
        response = await self._call(op, "PUT", url, "", ok=frozenset({200}), json={"port": body}, not_found_what="port")
        return self._port(op, response)
