"""Which port on a server, if any, is the NIC an earlier (possibly interrupted) attach call made.

Called whenever a POST might repeat an earlier one (an intent is recorded but no port ID was saved) or
the cloud answered that the port or IP is already in use. A wrong "no" costs a duplicate NIC; a wrong "yes"
is worse: the attachment then owns, and on deletion detaches, a NIC somebody else attached. So a plain-network
adoption takes a port only when it is the one port on the network new to the intent's baseline; when several
are (our lost POST's and another tool's), the answer is Ambiguous and the caller blocks (AdoptionAmbiguous)
instead of guessing. One new port is taken: after a lost answer it is ours or, if our POST made nothing, one
another tool attached since the baseline list; nothing on the server tells the two apart (docs/ownership.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.resources import AttachmentSpec, Intent


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """Several ports on the network are new to the intent's baseline: any of them may be ours."""

    candidates: tuple[str, ...]


def adoptable(
    spec: AttachmentSpec,
    intent: Intent | None,
    ports: Mapping[str, InterfaceAttachment],
    claimed: Collection[str],
    others_known: Collection[Collection[str]] = (),
    reserved_ips: Collection[tuple[str, str]] = (),
    running_jobs: Collection[tuple[str, Collection[str] | None]] = (),
) -> InterfaceAttachment | Ambiguous | None:
    """The port to adopt, None (attach anew), or Ambiguous (adopt nothing, attach nothing). ``claimed`` are
    port IDs other attachments on this server own;
    ``others_known`` the known ports of other attachments on this server whose attach is unanswered too;
    ``running_jobs`` the (network, baseline) of other attachments' v1 attach jobs that have not ended."""
    if spec.port_id:
        # Named by our spec, but owned by another attachment: never ours to adopt (nor, later, to detach).
        return None if spec.port_id in claimed else ports.get(spec.port_id)
    candidates = [p for p in ports.values() if p.net_id == spec.net_id and p.port_id not in claimed]
    if spec.fixed_ip:
        for port in candidates:
            if any(ip.ip_address == spec.fixed_ip for ip in port.fixed_ips):
                return port
        return None
    if intent is None or intent.known_ports is None:
        return None
    known = set(intent.known_ports)
    # A port carrying the fixed IP another unanswered attachment on this server asked for is that one's,
    # even though its answer was lost too: never take it as "the new port on our network".
    reserved = set(reserved_ips)
    fresh = [
        p
        for p in candidates
        if p.port_id not in known and not any((p.net_id, ip.ip_address) in reserved for ip in p.fixed_ips)
    ]
    # A port new to a running v1 job's baseline, on its network, may be what that job made: not ours to take
    # until the job ends and names its NIC (a wrong take would leave our own NIC unowned).
    for net, baseline in running_jobs:
        if net == spec.net_id:
            fresh = [p for p in fresh if baseline is not None and p.port_id in baseline]
    # Another unanswered attach (a crash lost both answers) whose intent already knew one of these ports was
    # recorded after ours, so our POST had landed by then: ours is among the ports it knew, and those it
    # did not know may be its own.
    ids = {p.port_id for p in fresh}
    for other in others_known:
        if ids & set(other):
            fresh = [p for p in fresh if p.port_id in other]
    # Attaches are serialised per server, so at most one interrupted POST per server can be ours; several
    # new ports on our network mean another tool attached too, and taking one would be a guess (the model
    # test found both ways a guess goes wrong: a foreign NIC detached, and our own left behind twice over).
    if len(fresh) > 1:
        return Ambiguous(tuple(sorted(p.port_id for p in fresh)))
    return fresh[0] if fresh else None
