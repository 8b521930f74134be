"""Crash storm: attachments created and half of them deleted while the operator is SIGKILLed and restarted at
random moments, half of the kills aimed at the window between the cloud's answer and the status write.

CI: 60 attachments, 30 deleted, >= 10 kills. ECSNIC_FAULTS_FULL=1: 200 attachments, 100 deleted, >= 30 kills.
"""

from __future__ import annotations

import os
import random
import threading
import time

from kubernetes import client, config

from ecs_nic_operator import GROUP, VERSION
from tests.integration.conftest import NET_A, NET_B
from tests.integration.faults.conftest import FULL, Stack
from tests.integration.kube import wait_for

COUNT = 200 if FULL else 60
KILLS = 30 if FULL else 10
PER_SERVER = 8
OPERATOR_ARGS = ["--resync-period", "20"]


def test_crash_storm_leaves_exactly_one_nic_per_live_resource_and_none_for_deleted_ones(stack: Stack) -> None:
    seed = int(os.environ.get("ECSNIC_FAULTS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"crash storm: seed {seed}, {COUNT} attachments, {KILLS} kills")
    ns = stack.new_namespace("flt-storm")
    servers = [stack.new_server(max_nics=12) for _ in range((COUNT + PER_SERVER - 1) // PER_SERVER)]
    names = [f"nic-{i:03d}" for i in range(COUNT)]
    specs = {}
    for i, name in enumerate(names):
        server = servers[i % len(servers)]
        if i % 4 == 0:
            specs[name] = stack.spec(server, fixedIps=[{"ipAddress": f"10.30.{100 + i // 200}.{2 + i % 200}"}])
        elif i % 4 == 1:
            specs[name] = stack.spec(server, netId=NET_B)
        else:
            specs[name] = stack.spec(server, netId=NET_A)
    doomed = rng.sample(names, COUNT // 2)
    # The cloud answers a POST/DELETE 0.4 s after changing its state: a wide window to crash in.
    stack.sim.behaviour(replyDelay=0.4)

    # The user, in their own thread and client: creates everything, then deletes half, spread over the storm.
    span = KILLS * 3.0
    pause = span / (COUNT * 1.5)
    kubeconfig = str(stack.kube.control_plane.kubeconfig)
    user_api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    errors: list[BaseException] = []

    def user() -> None:
        try:
            for name in names:
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "EcsNicAttachment", "metadata": {"name": name}}
                user_api.create_namespaced_custom_object(
                    GROUP, VERSION, ns, "ecsnicattachments", {**body, "spec": specs[name]}
                )
                time.sleep(rng.uniform(0, 2 * pause))
            for name in doomed:
                user_api.delete_namespaced_custom_object(GROUP, VERSION, ns, "ecsnicattachments", name)
                time.sleep(rng.uniform(0, 2 * pause))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def unsaved_nic() -> bool:
        """A NIC the cloud has attached whose port ID no status holds yet: the operator awaits the answer."""
        saved = {o.get("status", {}).get("portId") for o in stack.kube.list_attachments(ns)}
        state = stack.sim.state()["servers"]
        return any(n["port_id"] not in saved for s in servers for n in state.get(s, []))

    worker = threading.Thread(target=user, name="user", daemon=True)
    worker.start()
    kills = aimed = 0
    while kills < KILLS or worker.is_alive():
        if kills % 2 == 1:
            try:
                wait_for(unsaved_nic, timeout=5, interval=0.05, what="an attach awaiting its answer")
                aimed += 1
            except AssertionError:
                pass  # nothing in flight right now: a random kill instead
        else:
            time.sleep(rng.uniform(0.2, 2.5))
        stack.op.kill()
        kills += 1
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.1, 1.5))  # down for a while: the user keeps going
        stack.op.start()
    worker.join()
    assert not errors, errors
    stack.sim.behaviour(replyDelay=0)
    print(f"crash storm: {kills} kills, {aimed} aimed between a cloud answer and the status write")
    assert kills >= KILLS
    assert aimed >= KILLS // 4, f"only {aimed} kills landed in the attach window"

    live = set(names) - set(doomed)
    items = stack.converge(ns, live, set(doomed), set(servers), timeout=300 if FULL else 150)
    # Each NIC is what the spec asked for.
    for name, obj in items.items():
        spec = specs[name]
        assert obj["status"]["netId"] == spec["netId"]
        if "fixedIps" in spec:
            assert obj["status"]["fixedIps"][0]["ipAddress"] == spec["fixedIps"][0]["ipAddress"]
