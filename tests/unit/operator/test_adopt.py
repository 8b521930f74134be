"""Adoption after an interrupted attach: which port on the server is ours."""

from __future__ import annotations

from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.reconcile.adopt import adoptable
from ecs_nic_operator.resources import GARBLED, AttachmentSpec, Intent

NET, OTHER_NET = "net-a", "net-b"


def port(pid: str, net: str = NET, ip: str = "10.0.0.5") -> InterfaceAttachment:
    return InterfaceAttachment(pid, net, "fa:16:3e:00:00:01", "DOWN", (FixedIp("sub", ip),))


def spec(net: str | None = NET, port_id: str | None = None, fixed_ip: str | None = None) -> AttachmentSpec:
    return AttachmentSpec("default", "srv", None, net if port_id is None else None, port_id, fixed_ip, "Delete")


def ports(*items: InterfaceAttachment) -> dict[str, InterfaceAttachment]:
    return {p.port_id: p for p in items}


def test_port_id_is_adopted_only_when_on_this_server() -> None:
    assert adoptable(spec(port_id="p1"), None, ports(port("p1")), set()) == port("p1")
    assert adoptable(spec(port_id="p1"), None, ports(port("p2")), set()) is None


def test_fixed_ip_identifies_the_port_on_the_requested_network() -> None:
    here = ports(port("p1", ip="10.0.0.9"), port("p2", ip="10.0.0.7"), port("p3", OTHER_NET, "10.0.0.7"))
    assert adoptable(spec(fixed_ip="10.0.0.7"), None, here, set()) == here["p2"]
    assert adoptable(spec(fixed_ip="10.0.0.8"), None, here, set()) is None


def test_plain_net_id_adopts_only_a_port_that_appeared_after_the_intent() -> None:
    intent = Intent("2026-11-28T00:00:00Z", ("p1",))
    here = ports(port("p1"), port("p2"), port("p3", OTHER_NET))
    assert adoptable(spec(), intent, here, set()) == here["p2"]


def test_plain_net_id_never_takes_a_port_another_attachment_owns() -> None:
    intent = Intent("2026-11-28T00:00:00Z", ())
    here = ports(port("p1"), port("p2"))
    assert adoptable(spec(), intent, here, {"p1"}) == here["p2"]
    assert adoptable(spec(), intent, here, {"p1", "p2"}) is None


def test_plain_net_id_without_a_recorded_baseline_adopts_nothing() -> None:
    assert adoptable(spec(), None, ports(port("p1")), set()) is None
    assert adoptable(spec(), Intent("t", None), ports(port("p1")), set()) is None


def test_unreadable_intent_annotation_is_evidence_of_nothing() -> None:
    intent = Intent.load("{not json")
    assert intent is GARBLED and intent.sig == "" and intent.known_ports is None
    assert Intent.load(Intent("t", ("a", "b"), "srv", None, "s").dump()) == Intent("t", ("a", "b"), "srv", None, "s")
    assert Intent.load(None) is None


def test_a_port_named_by_spec_that_another_attachment_claims_is_never_adopted() -> None:
    assert adoptable(spec(port_id="p1"), None, ports(port("p1")), {"p1"}) is None


def test_two_unanswered_attaches_on_one_server_each_adopt_their_own_port() -> None:
    # x's POST made p1 and its answer was lost; y's intent (recorded after p1 existed) then made p2, lost too.
    x, y = Intent("t1", ("p0",)), Intent("t1", ("p0", "p1"))
    here = ports(port("p0"), port("p1"), port("p2"))
    assert adoptable(spec(), x, here, set(), [y.known_ports]) == here["p1"]
    assert adoptable(spec(), y, here, set(), [x.known_ports]) == here["p2"]
    # y's attach never reached the cloud: x still takes only the port y knew.
    assert adoptable(spec(), x, ports(port("p0"), port("p1")), set(), [y.known_ports]) == port("p1")


def test_plain_net_id_never_takes_the_port_of_another_unanswered_fixed_ip_attach() -> None:
    # Both POSTs landed and both answers were lost: the port with 10.0.0.7 is the fixed-IP attachment's.
    intent = Intent("t", ())
    here = ports(port("fixed", ip="10.0.0.7"), port("plain", ip="10.0.0.8"))
    assert adoptable(spec(), intent, here, set(), (), {(NET, "10.0.0.7")}) == here["plain"]
    assert adoptable(spec(), intent, ports(port("fixed", ip="10.0.0.7")), set(), (), {(NET, "10.0.0.7")}) is None
