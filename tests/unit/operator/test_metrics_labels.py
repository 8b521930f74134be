"""The attachments gauge: an attachment with no port yet is counted as NotAttached, never as "None"."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from ecs_nic_operator.metrics import NOT_ATTACHED, ControllerCollector
from ecs_nic_operator.resources import Attachment


def attachment(name: str, status: dict[str, object]) -> Attachment:
    return Attachment.from_body(
        {
            "metadata": {"namespace": "ns", "name": name, "uid": name},
            "spec": {"serverId": "s", "netId": "n"},
            "status": status,
        }
    )


def test_attachments_without_a_port_are_not_attached() -> None:
    objects = {
        ("ns", "new"): attachment("new", {}),
        ("ns", "up"): attachment("up", {"portId": "p", "portState": "ACTIVE"}),
    }
    controller = SimpleNamespace(objects=objects, kube=SimpleNamespace(writes=Counter()), queue=[])
    families = {f.name: f for f in ControllerCollector(lambda: controller).collect()}
    states = {s.labels["state"]: s.value for s in families["ecsnic_attachments"].samples}
    assert states == {NOT_ATTACHED: 1, "ACTIVE": 1}
    assert "None" not in states and NOT_ATTACHED == "NotAttached"
