"""The signed attach intent: what verifies, and everything a namespace user could do that must not."""

from __future__ import annotations

import dataclasses

import pytest

from ecs_nic_operator.config import INTENT_ANNOTATION
from ecs_nic_operator.reconcile.evidence import Signer
from ecs_nic_operator.resources import Attachment, Intent

NET = "11111111-2222-4333-8444-555555555555"


def body(uid: str = "uid-1", intent: str | None = None, **spec: object) -> dict[str, object]:
    annotations = {INTENT_ANNOTATION: intent} if intent is not None else {}
    return {
        "metadata": {"namespace": "ns", "name": "a", "uid": uid, "resourceVersion": "1", "annotations": annotations},
        "spec": {"serverId": "srv", "netId": NET, **spec},
    }


def signed(signer: Signer, obj: Attachment, known: tuple[str, ...] | None = ("p0",)) -> str:
    return signer.sign(obj, Intent("2026-12-01T00:00:00Z", known, "srv")).dump()


def with_intent(raw: str, uid: str = "uid-1", **spec: object) -> Attachment:
    return Attachment.from_body(body(uid, raw, **spec))


SIGNER = Signer(b"k" * 32)


def test_an_intent_the_operator_signed_for_this_object_verifies() -> None:
    raw = signed(SIGNER, Attachment.from_body(body()))
    assert SIGNER.verify(with_intent(raw))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda raw: with_intent(raw, uid="uid-2"), id="copied to another object"),
        pytest.param(lambda raw: with_intent(raw, fixedIps=[{"ipAddress": "10.0.0.9"}]), id="other spec"),
        pytest.param(lambda raw: with_intent(raw.replace('"p0"', '"p9"')), id="knownPorts edited"),
        pytest.param(lambda raw: with_intent(raw.replace("srv", "other")), id="server edited"),
        pytest.param(lambda raw: with_intent(raw.replace("2026", "2025")), id="startedAt edited"),
        pytest.param(lambda raw: with_intent('{"startedAt":"t","knownPorts":[],"server":"srv"}'), id="no signature"),
        pytest.param(lambda raw: with_intent("{not json"), id="garbled"),
        pytest.param(lambda raw: with_intent('"a string"'), id="not an object"),
    ],
)
def test_nothing_a_namespace_user_can_write_verifies(tamper: object) -> None:
    raw = signed(SIGNER, Attachment.from_body(body()))
    obj = tamper(raw)  # type: ignore[operator]
    assert obj.intent is not None
    assert not SIGNER.verify(obj)


def test_another_key_does_not_verify() -> None:
    raw = signed(SIGNER, Attachment.from_body(body()))
    assert not Signer(b"x" * 32).verify(with_intent(raw))


def test_a_repair_intent_stays_while_status_names_the_port_it_replaces() -> None:
    obj = Attachment.from_body(body())
    raw = SIGNER.sign(obj, Intent("t", ("p0",), "srv", replaces="old")).dump()
    for status_port, kept in (("old", True), ("new", False)):
        b = body(intent=raw)
        b["status"] = {"portId": status_port, "serverId": "srv"}
        got = Attachment.from_body(b)
        assert (got.intent is not None) == kept
        if kept:
            assert SIGNER.verify(got)
    assert dataclasses.replace(obj).intent is None
