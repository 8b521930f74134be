"""Error classification, backoff bounds, condition bookkeeping and the work queue."""

from __future__ import annotations

import asyncio
import time

from ecs_nic_operator import conditions
from ecs_nic_operator.cloud import errors
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason
from ecs_nic_operator.config import Settings
from ecs_nic_operator.reconcile.errors import backoff, classify
from ecs_nic_operator.workqueue import WorkQueue

SETTINGS = Settings(spec_retry=300.0, backoff_min=1.0, backoff_max=120.0)


def test_transient_errors_back_off_and_honour_retry_after() -> None:
    busy = classify(
        errors.ServerBusy("attach", "Cannot 'attach_interface' instance x while it is in task_state"), SETTINGS, 1
    )
    assert busy.reason == Reason.SERVER_BUSY and not busy.blocks_ready and 1.0 <= busy.delay <= 2.0
    throttled = classify(errors.Throttled("list", "throttled", retry_after=7.0), SETTINGS, 1)
    assert throttled.reason == Reason.THROTTLED and 7.0 <= throttled.delay <= 8.4
    down = classify(errors.CloudUnavailable("list", "503"), SETTINGS, 30)
    assert down.reason == Reason.CLOUD_UNAVAILABLE and 60.0 <= down.delay <= 120.0


def test_user_fixable_errors_retry_slowly_and_name_the_cause() -> None:
    cases = [
        (errors.NotFound("attach", "Network n could not be found.", what="network"), Reason.NETWORK_NOT_FOUND),
        (errors.NotFound("attach", "Port p could not be found.", what="port"), Reason.PORT_NOT_FOUND),
        (errors.NotFound("list", "Instance s could not be found.", what="server"), Reason.SERVER_NOT_FOUND),
        (errors.InUse("attach", "Port p is still in use."), Reason.PORT_IN_USE),
        (errors.InUse("attach", "Fixed IP address 1.2.3.4 is already in use on instance s."), Reason.IP_IN_USE),
        (errors.QuotaExceeded("attach", "Maximum number of ports exceeded"), Reason.QUOTA_EXCEEDED),
        (errors.AuthError("list", "Incorrect IAM authentication information"), Reason.CREDENTIALS_REJECTED),
        (errors.BadRequest("attach", "Invalid input"), Reason.INVALID_REQUEST),
    ]
    for exc, reason in cases:
        verdict = classify(exc, SETTINGS, 1)
        assert verdict.reason == reason, exc
        assert verdict.blocks_ready
        assert 270.0 <= verdict.delay <= 330.0
        assert exc.message in verdict.message


def test_backoff_never_zero_never_above_cap() -> None:
    delays = [backoff(SETTINGS, attempt) for attempt in range(40) for _ in range(20)]
    assert min(delays) >= 0.5 and max(delays) <= 120.0


def test_last_transition_time_moves_only_when_status_changes() -> None:
    first = conditions.merge([], [Condition(READY, False, Reason.PORT_DOWN, "down")], 1)
    first[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    same = conditions.merge(first, [Condition(READY, False, Reason.PORT_DOWN, "still down")], 2)
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2 and same[0]["message"] == "still down"
    flipped = conditions.merge(
        same, [Condition(READY, True, Reason.ACTIVE, "up"), Condition(SYNCED, True, "Ok", "")], 2
    )
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert [c["type"] for c in flipped] == [READY, SYNCED]


async def test_work_queue_dedupes_delays_and_never_runs_a_key_twice_at_once() -> None:
    runs: list[tuple[str, float]] = []
    active: set[str] = set()
    overlap: list[str] = []
    done = asyncio.Event()

    async def process(key: str) -> None:
        if key in active:
            overlap.append(key)
        active.add(key)
        runs.append((key, time.monotonic()))
        if key == "a" and len([k for k, _ in runs if k == "a"]) == 1:
            queue.schedule("a")  # rescheduled while running: runs again after, not alongside
        await asyncio.sleep(0.05)
        active.discard(key)
        if len(runs) == 4:
            done.set()

    queue: WorkQueue[str] = WorkQueue(process, workers=4)
    queue.start()
    start = time.monotonic()
    queue.schedule("a")
    queue.schedule("a")  # de-duplicated
    queue.schedule("b", 0.3)
    queue.schedule("b", 0.1)  # the earlier time wins
    queue.schedule("c", 0.2)
    await asyncio.wait_for(done.wait(), 5)
    await queue.stop()
    assert overlap == []
    assert [k for k, _ in runs].count("a") == 2
    b_at = next(t for k, t in runs if k == "b") - start
    assert 0.09 <= b_at < 0.3


async def test_front_of_the_queue_goes_before_everything_already_due() -> None:
    order: list[str] = []
    gate = asyncio.Event()
    done = asyncio.Event()

    async def process(key: str) -> None:
        if key == "blocker":
            await gate.wait()  # holds the only worker while the rest is queued
        order.append(key)
        if len(order) == 5:
            done.set()

    queue: WorkQueue[str] = WorkQueue(process, workers=1)
    queue.start()
    queue.schedule("blocker")
    await asyncio.sleep(0.05)
    for key in ("due-1", "due-2"):
        queue.schedule(key)
    queue.schedule("front-1", 0.5, front=True)  # front wins over its own later time too
    queue.schedule("front-2", front=True)
    gate.set()
    await asyncio.wait_for(done.wait(), 5)
    await queue.stop()
    assert order == ["blocker", "front-1", "front-2", "due-1", "due-2"]


async def test_a_key_scheduled_while_it_waits_for_a_worker_never_runs_twice_at_once() -> None:
    running: set[str] = set()
    overlap: list[str] = []
    runs: list[str] = []
    gates = {"b1": asyncio.Event(), "b2": asyncio.Event()}

    async def process(key: str) -> None:
        if key in running:
            overlap.append(key)
        running.add(key)
        if key in gates:
            await gates[key].wait()
        else:
            await asyncio.sleep(0.2)
        running.discard(key)
        runs.append(key)
        if runs.count("x") == 2:
            twice.set()

    twice = asyncio.Event()
    queue: WorkQueue[str] = WorkQueue(process, workers=2)
    queue.start()
    queue.schedule("b1")
    queue.schedule("b2")
    await asyncio.sleep(0.02)  # both workers busy
    queue.schedule("x")
    await asyncio.sleep(0.02)  # x is due and waits for a worker
    queue.schedule("x")  # e.g. a sibling's list woke it
    gates["b1"].set()
    await asyncio.sleep(0.05)  # x runs on the freed worker
    queue.schedule("x")  # while it runs: once more, after this run
    gates["b2"].set()  # a second worker frees up while x still runs

    await asyncio.wait_for(twice.wait(), 5)
    await queue.stop()
    assert overlap == []
    assert runs.count("x") == 2  # the run it was due for, and the one asked for while it ran


async def test_due_keys_of_the_main_lane_go_before_first_looks() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def process(key: str) -> None:
        if key == "blocker":
            await gate.wait()
        order.append(key)
        if len(order) == 4:
            drained.set()

    drained = asyncio.Event()
    queue: WorkQueue[str] = WorkQueue(process, workers=1)
    queue.start()
    queue.schedule("blocker")
    await asyncio.sleep(0.02)
    for key in ("new-1", "new-2"):
        queue.schedule(key, new=True)
    await asyncio.sleep(0.02)
    queue.schedule("poll")  # due later than the new ones, yet first once a worker is free
    gate.set()

    await asyncio.wait_for(drained.wait(), 5)
    await queue.stop()
    assert order == ["blocker", "poll", "new-1", "new-2"]
