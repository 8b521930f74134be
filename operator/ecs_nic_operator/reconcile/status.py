"""Writing what a user sees: status (only when something visible changes) and the Event that goes with it."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_nic_operator import conditions
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.kube import Kube
from ecs_nic_operator.reconcile.store import ServerKey, Store
from ecs_nic_operator.resources import Attachment

SYNCED_OK = Condition(SYNCED, True, Reason.RECONCILE_SUCCESS, "the last reconcile with the cloud succeeded")


def ready_condition(skey: ServerKey, port: InterfaceAttachment) -> Condition:
    """Ready from the port state; the same text while DOWN, so following a port writes nothing new."""
    if port.port_state == "ACTIVE":
        return Condition(READY, True, Reason.ACTIVE, f"port {port.port_id} is ACTIVE on server {skey[1]}")
    return Condition(
        READY,
        False,
        Reason.PORT_DOWN,
        f"port {port.port_id} is {port.port_state} on server {skey[1]}; waiting for ACTIVE",
    )


def healthy(obj: Attachment) -> bool:
    """Ready and Synced, and not being deleted: nothing a user waits for."""
    summary = {type_: status for type_, status, _ in obj.conditions_summary}
    return not obj.deleting and summary.get(READY) == "True" and summary.get(SYNCED) == "True"


def post(obj: Attachment, kind: str, reason: str, message: str) -> None:
    send = kopf.warn if kind == "Warning" else kopf.info
    send(obj.ref(), reason=reason, message=message)  # type: ignore[arg-type]


class StatusWriter:
    def __init__(self, kube: Kube, store: Store) -> None:
        self._kube = kube
        self._store = store

    def keep(self, body: dict[str, Any]) -> Attachment:
        """A write's answer: the newest copy unless a newer one (or the object's deletion) came meanwhile."""
        obj = Attachment.from_body(body)
        current = self._store.get(obj.key)
        # No current copy: its DELETED event came while this write was under way; do not bring it back.
        if current is not None and int(current.resource_version or 0) <= int(obj.resource_version or 0):
            self._store.put(obj)
        return obj

    async def write(
        self,
        obj: Attachment,
        fields: dict[str, Any] | None,
        wanted: list[Condition],
        event: tuple[str, str, str] | None = None,
    ) -> Attachment:
        """Patch status only when something a user would see changes; post the Event with it."""
        current = obj.status
        status: dict[str, Any] = dict(current)
        for name, value in (fields or {}).items():
            if value is None:
                status.pop(name, None)
            else:
                status[name] = value
        status["conditions"] = conditions.merge(status.get("conditions") or [], wanted, obj.generation)
        status["observedGeneration"] = obj.generation
        if status == current:
            return obj
        patch = dict(status)
        for name in current:
            if name not in status:
                patch[name] = None  # merge patch: null removes the field
        if event is not None and self._new_message(current, wanted):
            post(obj, *event)
        body = await self._kube.patch_status(obj.namespace, obj.name, patch)
        return self.keep(body)

    @staticmethod
    def _new_message(current: dict[str, Any], wanted: list[Condition]) -> bool:
        """Repeat an Event only when the condition it reports changed, not on every retry."""
        for cond in wanted:
            old = conditions.get(current, cond.type)
            if old is None or old.get("reason") != cond.reason or old.get("message") != cond.message[:1024]:
                return True
        return False
