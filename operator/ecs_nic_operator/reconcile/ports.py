"""Port properties (security groups, source/destination check, allowed address pairs): converged on the port
through the EcsCloud's network endpoint (Neutron's ``PUT /v2.0/ports/{id}``) after the attach and at every look
at a Ready attachment, like the attachment itself, and never a reason to detach.

Only what the spec manages is compared and sent: a field the spec leaves out is the cloud's business. One GET
per look (a drift check), one PUT only when something differs. The outcome says what status should show and
what Synced is; the caller writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecs_nic_operator.cloud.errors import CloudError
from ecs_nic_operator.cloud.models import AddressPair, Port
from ecs_nic_operator.cloud.network import ANY_SOURCE, NetworkClient
from ecs_nic_operator.conditions import SYNCED, Condition, Reason
from ecs_nic_operator.resources import PortProperties, port_properties_status


@dataclass(frozen=True, slots=True)
class PortOutcome:
    fields: dict[str, Any]  # status fields to write (the properties as last read), empty when not read
    synced: Condition | None  # None: the properties are as wanted (Synced is the attachment's own)
    updated: tuple[str, ...] = ()  # which properties a PUT changed (for the Event)


def wanted_pairs(props: PortProperties, current: Port) -> tuple[AddressPair, ...] | None:
    """The allowed address pairs the port should have, or None when the spec manages neither pairs nor the
    source/destination check. Pairs the spec does not manage are kept as they are."""
    if props.address_pairs is None and props.source_dest_check is None:
        return None
    others = [p for p in current.allowed_address_pairs if p.ip_address != ANY_SOURCE]
    any_source = [p for p in current.allowed_address_pairs if p.ip_address == ANY_SOURCE]
    pairs = list(props.address_pairs) if props.address_pairs is not None else others
    if props.source_dest_check is None:
        return tuple(pairs + any_source)
    return tuple(pairs + ([] if props.source_dest_check else [AddressPair(ANY_SOURCE)]))


def _same_pairs(a: tuple[AddressPair, ...], b: tuple[AddressPair, ...]) -> bool:
    """Neutron keeps pairs as a set: the order they come back in means nothing."""
    return sorted((p.ip_address, p.mac_address) for p in a) == sorted((p.ip_address, p.mac_address) for p in b)


async def converge(
    network: NetworkClient | None, props: PortProperties, port_id: str, cloud: str, api: str = "v2.1"
) -> PortOutcome:
    """Read the port; update the managed properties that differ; say what status shows."""
    if not props.managed:
        return PortOutcome({}, None)
    if network is None and api == "v1" and props.source_dest_check is None and props.address_pairs is None:
        return PortOutcome({}, None)  # the groups went in the v1 attach call; without the endpoint, unchecked
    if network is None:
        message = (
            f"EcsCloud {cloud!r} has no spec.networkEndpoint, so securityGroupIds, sourceDestCheck and "
            "allowedAddressPairs cannot be applied or checked: set it (Huawei's VPC endpoint, or a Neutron)"
        )
        return PortOutcome({}, Condition(SYNCED, False, Reason.UNSUPPORTED_BY_API, message))
    try:
        current = await network.show_port(port_id)
        groups = props.security_groups
        change_groups = groups is not None and list(current.security_groups) != list(groups)
        pairs = wanted_pairs(props, current)
        change_pairs = pairs is not None and not _same_pairs(pairs, current.allowed_address_pairs)
        if not change_groups and not change_pairs:
            return PortOutcome(port_properties_status(current), None)
        updated = await network.update_port(
            port_id,
            security_groups=list(groups) if change_groups and groups is not None else None,
            allowed_address_pairs=pairs if change_pairs else None,
        )
    except CloudError as exc:
        message = f"the port properties of {port_id} could not be applied: {exc}; the NIC stays attached"
        return PortOutcome({}, Condition(SYNCED, False, Reason.PORT_UPDATE_FAILED, message))
    what = tuple(
        n for n, changed in (("securityGroupIds", change_groups), ("allowedAddressPairs", change_pairs)) if changed
    )
    return PortOutcome(port_properties_status(updated), None, what)
