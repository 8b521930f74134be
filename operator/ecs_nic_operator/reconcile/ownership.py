"""Who else has a claim on a server's ports, from the store's index (not a scan of every attachment).

Adoption after a lost answer must never take what another attachment owns or may own; a port named by
spec.portId is only ever this attachment's when no other attachment, in any namespace, claims it. Only
verified intents count as claims (reconcile/evidence.py): a forged one could otherwise steer adoption.
"""

from __future__ import annotations

from ecs_nic_operator.reconcile.evidence import Signer
from ecs_nic_operator.reconcile.store import ServerKey, Store
from ecs_nic_operator.resources import Attachment, Key

# claimed ports, known ports of unanswered intents, reserved (network, IP) pairs, running v1 jobs' (network, known)
Rivals = tuple[set[str], list[tuple[str, ...]], set[tuple[str, str]], list[tuple[str, tuple[str, ...] | None]]]


def rivals(store: Store, skey: ServerKey, key: Key, signer: Signer) -> Rivals:
    """Ports other attachments on this server own (in status) or may own (named by the spec of an unanswered
    attach), the known ports of their unanswered plain-network intents, and the (network, fixed IP) pairs
    unanswered ones asked for, and the (network, baseline) of plain-network v1 attach jobs still running: the
    four arguments adopt.adoptable weighs."""
    claimed: set[str] = set()
    others_known: list[tuple[str, ...]] = []
    reserved_ips: set[tuple[str, str]] = set()
    jobs: list[tuple[str, tuple[str, ...] | None]] = []
    for o in store.on_server(skey):
        if o.key == key:
            continue
        if o.port_id and o.status_server == skey[1]:
            claimed.add(o.port_id)
        if o.intent is None or not signer.verify(o) or o.intent.server != skey[1]:
            continue
        if o.spec.port_id:
            claimed.add(o.spec.port_id)
        elif o.spec.fixed_ip and o.spec.net_id:
            reserved_ips.add((o.spec.net_id, o.spec.fixed_ip))
        elif o.job_id and o.spec.net_id and not o.port_id:
            # Issue 13: its job names its NIC only when it ends; until then any new port on its network may be
            # that NIC, so no rival adopts one (the job's SUCCESS puts it in status, claimed, in seconds).
            jobs.append((o.spec.net_id, o.intent.known_ports))
        if o.intent.known_ports is not None:
            others_known.append(o.intent.known_ports)
    return claimed, others_known, reserved_ips, jobs


def port_claimer(store: Store, obj: Attachment, port_id: str, signer: Signer) -> Attachment | None:
    """Another attachment (any namespace) that owns this port: it has it in status, or its verified intent
    names it by spec.portId and its attach is unanswered."""
    for other in store.naming_port(port_id):
        if other.key == obj.key or other.uid == obj.uid:
            continue
        if other.port_id == port_id:
            return other
        if other.spec.port_id == port_id and not other.port_id and signer.verify(other):
            return other
    return None
