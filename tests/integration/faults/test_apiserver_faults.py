"""API-server faults: kube-apiserver restarted mid-run (every watch broken), and a user's label/annotation
patches racing the operator's writes. The operator recovers without a restart of its own and no status is lost.
"""

from __future__ import annotations

import random
import threading
import time

from kubernetes import client, config

from ecs_nic_operator import GROUP, VERSION
from tests.integration.faults.conftest import FULL, Stack

COUNT = 16 if FULL else 8


def test_apiserver_restart_mid_run_needs_no_operator_restart(stack: Stack) -> None:
    ns = stack.new_namespace("flt-apiserver")
    servers = [stack.new_server(max_nics=2 * COUNT) for _ in range(2)]  # room for both waves (full: 16 each)
    pid = stack.op.proc.pid if stack.op.proc else None
    first = [f"first-{i}" for i in range(COUNT)]
    stack.sim.behaviour(replyDelay=0.3)  # attaches are in flight when the API server goes away
    for i, name in enumerate(first):
        stack.create(ns, name, stack.spec(servers[i % 2]))
    time.sleep(0.5)  # let the first attaches start: the restart lands mid-run, not before it
    stack.kube.control_plane.restart_apiserver()
    stack.sim.behaviour(replyDelay=0)

    # Created and deleted after the restart: only a re-established watch sees these.
    second = [f"second-{i}" for i in range(COUNT)]
    for i, name in enumerate(second):
        stack.create(ns, name, stack.spec(servers[i % 2]))
    stack.converge(ns, set(first) | set(second), set(), set(servers), timeout=120)
    doomed = set(first[:2]) | set(second[:2])
    for name in doomed:
        stack.delete(ns, name)
    stack.converge(ns, (set(first) | set(second)) - doomed, doomed, set(servers), timeout=60)
    assert stack.op.proc is not None and stack.op.proc.poll() is None and stack.op.proc.pid == pid


def test_user_patches_racing_the_operator_do_not_lose_status(stack: Stack) -> None:
    ns = stack.new_namespace("flt-race")
    servers = [stack.new_server() for _ in range(2)]
    names = [f"race-{i}" for i in range(COUNT)]
    kubeconfig = str(stack.kube.control_plane.kubeconfig)
    user = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    stop = threading.Event()
    patches = [0]
    last_label: dict[str, tuple[int, str]] = {}  # name -> (resourceVersion, team) of its newest accepted patch
    lock = threading.Lock()
    problems: list[str] = []
    rng = random.Random(7)

    def racer() -> None:
        # Label and annotation merges (what kubectl label/annotate send), as fast as the API server takes them.
        while not stop.is_set():
            name = rng.choice(names)
            patch = {
                "metadata": {
                    "labels": {"team": f"t{rng.randint(0, 9)}"},
                    "annotations": {"example.com/touched": str(time.monotonic())},
                }
            }
            try:
                got = user.patch_namespaced_custom_object(GROUP, VERSION, ns, "ecsnicattachments", name, patch)
                version = int(got["metadata"]["resourceVersion"])
                with lock:
                    patches[0] += 1
                    if version > last_label.get(name, (0, ""))[0]:
                        last_label[name] = (version, got["metadata"]["labels"]["team"])
            except client.ApiException as exc:
                if exc.status != 404:
                    problems.append(f"{name}: {exc.status} {exc.reason}")

    for i, name in enumerate(names):
        stack.create(ns, name, stack.spec(servers[i % 2]))
    threads = [threading.Thread(target=racer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        items = stack.converge(ns, set(names), set(), set(servers), timeout=90)
        # Keep racing a while after Ready: a later write must not drop what an earlier one said.
        time.sleep(3)  # a measurement window for the race, not a wait for a state
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:5]
    assert patches[0] > 3 * COUNT, f"only {patches[0]} user patches raced the operator"
    after = stack.converge(ns, set(names), set(), set(servers), timeout=30)
    for name in names:
        assert after[name]["status"]["portId"] == items[name]["status"]["portId"]
        if name in last_label:  # the user's newest write kept too: no operator write replaced their metadata
            assert after[name]["metadata"]["labels"]["team"] == last_label[name][1], name
