"""The run's fallback look waits for the rest of the run, however long each of its attaches takes."""

from __future__ import annotations

from ecs_nic_operator.reconcile.pacing import RUN_FALLBACK, Runs, run_fallback
from ecs_nic_operator.resources import Attachment


def attachment(name: str, server: str) -> Attachment:
    return Attachment.from_body(
        {
            "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}", "generation": 1},
            "spec": {"serverId": server, "netId": "net-1"},
        }
    )


def test_the_fallback_comes_after_the_rest_of_the_run_at_any_latency() -> None:
    # 5 s a call: a's attach took 5.3 s, three more follow on its server; a's own look must not come before
    # the last of them has attached and looked (3 x 5.3 + 2 s), or a polls alone.
    assert run_fallback(2.0, 3, 5.3) == 3 * 5.3 + 2.0 + RUN_FALLBACK
    assert run_fallback(2.0, 3, 5.3) > 3 * 5.3 + 2.0 + 5.0  # ... and its answer, 5 s later
    assert run_fallback(2.0, 1, 0.1) == 0.1 + 2.0 + RUN_FALLBACK  # a fast cloud: as before, about
    assert run_fallback(2.0, 2, -1.0) == 2.0 + RUN_FALLBACK  # a clock step never makes it sooner


def test_runs_count_what_is_left_of_a_servers_run() -> None:
    runs = Runs()
    for i in range(4):
        runs.add(attachment(f"a{i}", "srv-1"))
    runs.add(attachment("b", "srv-2"))
    skey = ("default", "srv-1")
    assert runs.left(skey) == 4
    assert runs.take_next(skey, lambda key: True) is not None
    assert runs.left(skey) == 3 and runs.left(("default", "srv-2")) == 1 and runs.left(("default", "none")) == 0
