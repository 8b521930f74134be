"""Issue 13: a v1 attach job that has not ended claims what it will make. Another attachment on the same
server and network, adopting by its baseline after its own lost answer, must not take that NIC."""

from __future__ import annotations

from typing import Any

from ecs_nic_operator.cloud.models import FixedIp, InterfaceAttachment
from ecs_nic_operator.reconcile.adopt import adoptable
from ecs_nic_operator.reconcile.evidence import Signer
from ecs_nic_operator.reconcile.ownership import rivals
from ecs_nic_operator.reconcile.store import Store
from ecs_nic_operator.resources import INTENT_ANNOTATION, Attachment, Intent

SERVER, NET = "srv", "net-a"
SIGNER = Signer(b"k" * 32)


def attachment(name: str, status: dict[str, Any], known: tuple[str, ...]) -> Attachment:
    body = {"metadata": {"namespace": "ns", "name": name, "uid": name}, "spec": {"serverId": SERVER, "netId": NET}}
    obj = Attachment.from_body({**body, "status": status})
    intent = SIGNER.sign(obj, Intent("2026-01-01T00:00:00Z", known, SERVER, seq=1))
    meta = {**body["metadata"], "annotations": {INTENT_ANNOTATION: intent.dump()}}
    return Attachment.from_body({**body, "metadata": meta, "status": status})


def nic(pid: str) -> InterfaceAttachment:
    return InterfaceAttachment(pid, NET, "fa:16:3e:00:00:01", "DOWN", (FixedIp("sub", "10.0.0.5"),))


def test_a_running_jobs_nic_is_never_adopted_by_a_rival_until_the_job_names_it() -> None:
    store = Store()
    lost = attachment("lost", {}, ("p0",))  # its POST's answer was lost; it looks for a NIC new to p0
    running = attachment("running", {"serverId": SERVER, "jobId": "job-1"}, ("p0",))  # its job has not ended
    store.put(lost)
    store.put(running)
    # The running job's NIC (p9) appears first: p9 may well be "running"'s, so "lost" adopts nothing yet.
    here = {p: nic(p) for p in ("p0", "p9")}
    assert adoptable(lost.spec, lost.intent, here, *rivals(store, (lost.spec.cloud, SERVER), lost.key, SIGNER)) is None
    # The job ended and "running" wrote p9 to status: now the other new port is "lost"'s own.
    done = attachment("running", {"serverId": SERVER, "portId": "p9"}, ("p0",))
    store.put(done)
    here["p5"] = nic("p5")
    found = adoptable(lost.spec, lost.intent, here, *rivals(store, (lost.spec.cloud, SERVER), lost.key, SIGNER))
    assert found is not None and found.port_id == "p5"
