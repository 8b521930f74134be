"""Model-based test: hypothesis interleaves what users, the cloud and crashes do with the reconciles the
operator runs, and checks the exactly-once and ownership promises after every step.

Default run: a bounded number of examples (CI). Long mode, by hand:
    ECSNIC_MODEL_EXAMPLES=2000 ECSNIC_MODEL_STEPS=80 .venv/bin/pytest tests/unit/reconcile/test_model.py -s
The number of steps explored is printed at the end (-s shows it).
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ecs_nic_operator.config import INTENT_ANNOTATION
from tests.unit.reconcile.fakes import Crash
from tests.unit.reconcile.harness import NET, Harness

SERVER = "srv-1"
NAMES = ["a", "b", "c", "d"]
EXAMPLES = int(os.environ.get("ECSNIC_MODEL_EXAMPLES", "40"))
STEPS = int(os.environ.get("ECSNIC_MODEL_STEPS", "30"))
EXPLORED = {"steps": 0, "examples": 0, "ambiguities": 0}


def ambiguity(body: dict[str, Any]) -> tuple[str, ...] | None:
    """The candidate ports an AdoptionAmbiguous verdict names (its message lists them), or None."""
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Synced" and cond.get("reason") == "AdoptionAmbiguous":
            named = re.search(r"ports (.*?) on network", cond.get("message", ""))
            return tuple(named.group(1).split(", ")) if named else ()
    return None


class Attachments(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.h: Harness = self.loop.run_until_complete(self._harness())
        self.uids: dict[str, str] = {}  # uid -> name, every attachment ever created
        self.deleted: dict[str, str] = {}  # uid -> deletionPolicy when it was deleted (or set since)
        # uid -> how many detaches the cloud had seen when it was deleted with Orphan (cleared by a later edit:
        # the operator may act on the policy it read before an edit it has not seen yet)
        self.orphaned_at: dict[str, int] = {}
        # uid -> the port its spec names: the ownership rule lets it detach that port once no live attachment
        # claims it (e.g. one deleted with Orphan left it attached), even though another attached it.
        self.names_port: dict[str, str] = {}
        self.ambiguities: set[tuple[str, tuple[str, ...]]] = set()  # (uid, candidates) already checked
        EXPLORED["examples"] += 1

    @staticmethod
    async def _harness() -> Harness:
        h = Harness()
        h.cloud.servers[SERVER] = {}
        h.cloud.free_ports.update({"free-1": NET, "free-2": NET})
        return h

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coro: Any) -> None:
        self.loop.run_until_complete(coro)

    # -- users ------------------------------------------------------------------------------------------
    @rule(
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(["net", "ip", "port-1", "port-2"]),
        policy=st.sampled_from(["Delete", "Orphan"]),
    )
    def create(self, name: str, kind: str, policy: str) -> None:
        EXPLORED["steps"] += 1
        if self.h.obj("ns", name) is not None:
            return
        spec: dict[str, Any] = {"serverId": SERVER, "deletionPolicy": policy}
        if kind.startswith("port"):
            spec["portId"] = "free-" + kind[-1]
        else:
            spec["netId"] = NET
            if kind == "ip":
                spec["fixedIps"] = [{"ipAddress": f"10.9.0.{NAMES.index(name) + 10}"}]
        body = self.h.kube.create("ns", name, spec)
        self.uids[body["metadata"]["uid"]] = name
        if "portId" in spec:
            self.names_port[body["metadata"]["uid"]] = spec["portId"]

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        EXPLORED["steps"] += 1
        body = self.h.obj("ns", name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        uid = body["metadata"]["uid"]
        self.deleted[uid] = body["spec"].get("deletionPolicy", "Delete")
        if self.deleted[uid] == "Orphan":
            self.orphaned_at[uid] = len(self.h.cloud.detached_for)
        self.h.kube.delete("ns", name)

    @rule(name=st.sampled_from(NAMES), policy=st.sampled_from(["Delete", "Orphan"]))
    def set_policy(self, name: str, policy: str) -> None:
        EXPLORED["steps"] += 1
        body = self.h.obj("ns", name)
        if body is None:
            return
        self.h.kube.edit_spec("ns", name, deletionPolicy=policy)
        uid = body["metadata"]["uid"]
        if uid in self.deleted:
            self.deleted[uid] = policy
            self.orphaned_at.pop(uid, None)

    @rule(name=st.sampled_from(NAMES))
    def resolve_ambiguity(self, name: str) -> None:
        """What AdoptionAmbiguous tells its user (docs/ownership.md): detach by hand the NIC this attachment
        made (the user can tell from the cloud's console; the model knows), then remove the intent annotation
        and the finalizer so that it attaches anew."""
        EXPLORED["steps"] += 1
        body = self.h.obj("ns", name)
        if body is None or ambiguity(body) is None or body["metadata"].get("deletionTimestamp"):
            return
        uid = body["metadata"]["uid"]
        for port in [p for p, u in self.h.cloud.made_for.items() if u == uid]:
            self.h.cloud.servers[SERVER].pop(port, None)
        body = copy.deepcopy(body)
        body["metadata"]["annotations"].pop(INTENT_ANNOTATION, None)
        body["metadata"]["finalizers"] = []
        self.h.kube._commit(body)

    # -- the operator --------------------------------------------------------------------------------
    @rule(name=st.sampled_from(NAMES))
    def reconcile(self, name: str) -> None:
        EXPLORED["steps"] += 1
        obj = self.h.controller.objects.get(("ns", name))
        if obj is None:
            return
        self.h.cloud.current_uid = obj.uid
        try:
            self.run(self.h.controller.reconcile(("ns", name)))
        except Crash:
            self.restart()

    @rule()
    def restart(self) -> None:
        EXPLORED["steps"] += 1
        self.h.deliver()
        self.run(self._restart())

    async def _restart(self) -> None:
        self.h.new_controller()

    @rule()
    def deliver_events(self) -> None:
        EXPLORED["steps"] += 1
        self.h.deliver()

    @rule(hold=st.booleans())
    def hold_events(self, hold: bool) -> None:
        EXPLORED["steps"] += 1
        self.h.hold_events = hold
        if not hold:
            self.h.deliver()

    # -- the cloud and the world ------------------------------------------------------------------------
    @rule()
    def lose_next_reply(self) -> None:
        EXPLORED["steps"] += 1
        self.h.cloud.lose_next_reply = 1

    @rule()
    def crash_on_next_attach(self) -> None:
        EXPLORED["steps"] += 1
        self.h.cloud.crash_next_attach = True

    @rule()
    def conflicting_write(self) -> None:
        EXPLORED["steps"] += 1
        self.h.kube.conflict_next = 1

    @rule(down=st.booleans())
    def cloud_down(self, down: bool) -> None:
        EXPLORED["steps"] += 1
        self.h.cloud.down = down

    @precondition(lambda self: bool(self.h.cloud.servers[SERVER]))
    @rule(data=st.data())
    def detach_out_of_band(self, data: st.DataObject) -> None:
        EXPLORED["steps"] += 1
        port = data.draw(st.sampled_from(sorted(self.h.cloud.servers[SERVER])))
        del self.h.cloud.servers[SERVER][port]
        if port.startswith("free-"):
            self.h.cloud.free_ports[port] = NET

    @rule()
    def foreign_attach(self) -> None:
        EXPLORED["steps"] += 1
        self.h.cloud.attach_foreign(SERVER, NET)

    @rule()
    def settle(self) -> None:
        """The cloud is healthy and nothing is lost any more: everything must converge."""
        EXPLORED["steps"] += 1
        cloud = self.h.cloud
        cloud.down, cloud.lose_next_reply, cloud.crash_next_attach = False, 0, False
        self.h.kube.conflict_next = 0
        self.h.hold_events = False
        self.h.deliver()
        self._converge()
        # A deletion the operator refused to guess for (AdoptionAmbiguous) waits for its user: do what
        # docs/ownership.md says (detach by hand the NIC this attachment made, then Orphan), and converge again.
        if self._resolve_ambiguous_deletions():
            self._converge()
        # No stuck finalizer once the cloud is healthy.
        stuck = [k for k, b in self.h.kube.objects.items() if b["metadata"].get("deletionTimestamp")]
        assert not stuck, f"finalizers stuck on {stuck}"
        # Every deleted attachment's NIC is gone (Delete) or was never detached by us (Orphan).
        present = set(cloud.servers[SERVER])
        for uid, policy in self.deleted.items():
            mine = {p for p, u in cloud.made_for.items() if u == uid}
            if policy == "Delete":
                assert not (mine & present), f"{self.uids[uid]} (Delete) left {mine & present}"

    def _converge(self) -> None:
        cloud = self.h.cloud
        for _ in range(40):
            # A reconcile may progress with neither write nor change on the cloud (a DELETE answered 404 after a
            # restart, whose next look releases): the calls it made count as progress too.
            before = (repr(self.h.kube.objects), repr(cloud.servers), repr(cloud.calls))
            for key in list(self.h.controller.objects):
                obj = self.h.controller.objects.get(key)
                if obj is None:
                    continue
                cloud.current_uid = obj.uid
                self.h.controller.views.forget_server(("default", SERVER))  # time passes: caches expire
                self.run(self.h.controller.reconcile(key))
            if (repr(self.h.kube.objects), repr(cloud.servers), repr(cloud.calls)) == before:
                break

    def _resolve_ambiguous_deletions(self) -> bool:
        acted = False
        for (_, name), body in list(self.h.kube.objects.items()):
            if not body["metadata"].get("deletionTimestamp") or ambiguity(body) is None:
                continue
            uid = body["metadata"]["uid"]
            for port in [p for p, u in self.h.cloud.made_for.items() if u == uid]:
                if port in self.h.cloud.servers[SERVER]:
                    del self.h.cloud.servers[SERVER][port]  # by hand: not a detach of the operator's
            self.set_policy(name, "Orphan")
            acted = True
        return acted

    # -- the promises, after every step ---------------------------------------------------------------
    @invariant()
    def no_nic_attached_twice_for_one_attachment(self) -> None:
        present = set(self.h.cloud.servers.get(SERVER, {}))
        per_uid: dict[str, set[str]] = {}
        for port, uid in self.h.cloud.made_for.items():
            if port in present:
                per_uid.setdefault(uid, set()).add(port)
        doubled = {self.uids.get(u, u): ports for u, ports in per_uid.items() if len(ports) > 1}
        assert not doubled, f"attached twice: {doubled}"

    @invariant()
    def an_ambiguity_is_real(self) -> None:
        """AdoptionAmbiguous names at least two ports, and not all of them are the attachment's own: the
        operator refused a guess it really could not make, rather than blocking for nothing."""
        for body in self.h.kube.objects.values():
            candidates = ambiguity(body)
            if candidates is None or (body["metadata"]["uid"], candidates) in self.ambiguities:
                continue
            self.ambiguities.add((body["metadata"]["uid"], candidates))
            EXPLORED["ambiguities"] += 1
            uid = body["metadata"]["uid"]
            assert len(candidates) >= 2, f"{self.uids[uid]}: AdoptionAmbiguous with {candidates}"
            theirs = [p for p in candidates if self.h.cloud.made_for.get(p) != uid]
            assert theirs, f"{self.uids[uid]}: AdoptionAmbiguous, yet {candidates} are all its own"

    @invariant()
    def no_nic_detached_that_the_operator_did_not_own(self) -> None:
        cloud = self.h.cloud
        for n, (port, uid) in enumerate(cloud.detached_for):
            # The one case adoption by baseline cannot tell apart (docs/ownership.md, "What adoption cannot
            # know"): the attachment's attach was answered with an error that does not exclude an effect but
            # made no NIC, and another tool attached exactly one NIC on the network since its baseline list.
            # Two new NICs (ours and a foreign one) are AdoptionAmbiguous: nothing is adopted or detached.
            unsure = uid in cloud.refused_unsure_for
            assert port not in cloud.foreign or unsure, f"detached foreign NIC {port}"
            if port in cloud.foreign:
                continue
            owner = cloud.made_for.get(port)
            named = self.names_port.get(uid) == port and owner in self.deleted
            assert owner == uid or named, f"{self.uids.get(uid)} detached {port}, made for another"
            if uid in self.orphaned_at:
                assert n < self.orphaned_at[uid], f"{self.uids.get(uid)} was deleted with Orphan, its {port} detached"


Attachments.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAttachments = Attachments.TestCase


def teardown_module() -> None:
    print(
        f"\nmodel: {EXPLORED['examples']} examples, {EXPLORED['steps']} steps explored, "
        f"{EXPLORED['ambiguities']} AdoptionAmbiguous verdicts checked"
    )
