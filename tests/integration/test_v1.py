"""Huawei's v1 NIC API and the port properties, end to end on the real API server with the simulator in its
Huawei dialect (jobs that take their time, security groups, an IPv6 subnet, Neutron's port API on the same
endpoint): attach/detach on v1 with security groups and a fixed IP, a crash while a job runs, port properties
changed on a Ready attachment and repaired after drift, IPv6 on v1 and refused on v2.1."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ecs_nic_operator.devenv.processes import OperatorProcess, SimulatorProcess
from tests.integration.conftest import SIM_PROJECT, SIM_TOKEN, apply_cloud, cloud_ready
from tests.integration.kube import Kube, condition, wait_for

pytestmark = pytest.mark.integration

NET = "12121212-3434-4565-8787-909090909090"
SUBNET = "abababab-cdcd-4efe-8a0a-b1b1b1b1b1b1"
SUBNET6 = "c6c6c6c6-d6d6-4e6e-8f6f-a6a6a6a6a6a6"
SG_DEFAULT = "5a5a5a5a-0000-4000-8000-000000000001"
SG_WEB = "5a5a5a5a-0000-4000-8000-000000000002"
SG_DB = "5a5a5a5a-0000-4000-8000-000000000003"
BANDWIDTH = "b0b0b0b0-0000-4000-8000-00000000000b"
JOB_TIME = 2.0


@pytest.fixture(scope="module")
def v1_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder = tmp_path_factory.mktemp("v1-simulator")
    seed = {
        "projectId": SIM_PROJECT,
        "credentials": {"token": SIM_TOKEN},
        "servers": [],
        "networks": [
            {
                "id": NET,
                "subnetId": SUBNET,
                "cidr": "10.50.0.0/16",
                "ipv6SubnetId": SUBNET6,
                "ipv6Cidr": "2001:db8:50::/64",
            }
        ],
        "ports": [],
        "securityGroups": [
            {"id": SG_DEFAULT, "name": "default"},
            {"id": SG_WEB, "name": "web"},
            {"id": SG_DB, "name": "db"},
        ],
        "behaviour": {
            "dialect": "huawei",
            "latency": 0.01,
            "activeAfter": 0.6,
            "detachAfter": 0.3,
            "jobTime": JOB_TIME,
        },
    }
    (folder / "seed.json").write_text(json.dumps(seed))
    with open(folder / "simulator.log", "w") as log:
        sim = SimulatorProcess(folder / "seed.json", log=log)
        sim.start()
        yield sim
        sim.stop()


@pytest.fixture(scope="module")
def clouds(kube: Kube, v1_sim: SimulatorProcess) -> Iterator[None]:
    apply_cloud(kube, v1_sim.url, name="v1", api="v1", networkEndpoint=v1_sim.url)
    apply_cloud(kube, v1_sim.url, name="v21", networkEndpoint=v1_sim.url)
    yield
    for name in ("v1", "v21"):
        kube.kubectl("delete", "ecscloud", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture(scope="module")
def own_operator(
    kube: Kube, operator: OperatorProcess, clouds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """Its own operator (this module kills it), with short drift checks and a short bound for lost job IDs."""
    operator.stop()
    log = tmp_path_factory.mktemp("v1-operator") / "operator.log"
    own = OperatorProcess(kube.control_plane.kubeconfig, log, args=["--resync-period", "3", "--stuck-after", "20"])
    own.start()
    try:
        wait_for(
            lambda: cloud_ready(kube, "v1") and cloud_ready(kube, "v21"), timeout=30, what="EcsClouds v1, v21 Ready"
        )
        yield own
    finally:
        own.stop()
        operator.start()


@pytest.fixture
def server(v1_sim: SimulatorProcess) -> str:
    server_id = str(uuid.uuid4())
    v1_sim.add_server(server_id, max_nics=4)
    return server_id


def port(sim: SimulatorProcess, port_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.url}/_simulator/ports/{port_id}", timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())["port"]
        return doc


def set_port(sim: SimulatorProcess, port_id: str, **props: Any) -> None:
    body = json.dumps({"port": props}).encode()
    req = urllib.request.Request(f"{sim.url}/_simulator/ports/{port_id}", data=body, method="PUT")
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=10).close()


def ready(kube: Kube, namespace: str, name: str, status: str = "True") -> dict[str, Any] | None:
    obj = kube.get_attachment(namespace, name)
    c = condition(obj, "Ready")
    return obj if c is not None and c["status"] == status else None


def jobs(sim: SimulatorProcess, kind: str = "batchAddNics") -> int:
    return sum(sim.state()["jobs"].get(kind, {}).values())


def test_attach_and_detach_on_v1_with_security_groups_and_a_fixed_ip(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    before = jobs(v1_sim)
    spec = {
        "cloudRef": {"name": "v1"},
        "serverId": server,
        "netId": NET,
        "fixedIps": [{"ipAddress": "10.50.1.7"}],
        "securityGroupIds": [SG_WEB, SG_DB],
    }
    kube.create_attachment(namespace, "v1nic", spec)
    # The job ID is in status while the job runs, before any NIC exists.
    running = wait_for(
        lambda: (o := kube.get_attachment(namespace, "v1nic")).get("status", {}).get("jobId") and o,
        timeout=30,
        what="jobId in status",
    )
    assert (condition(running, "Ready") or {}).get("reason") == "JobRunning"
    obj = wait_for(lambda: ready(kube, namespace, "v1nic"), timeout=60, what="Ready on v1")
    status = obj["status"]
    assert "jobId" not in status
    nics = v1_sim.ports_of(server)
    assert [n["port_id"] for n in nics] == [status["portId"]]
    assert {"subnetId": SUBNET, "ipAddress": "10.50.1.7"} in status["fixedIps"]
    assert status["pciAddress"].startswith("0000:00:") and status["driverMode"] == "virtio"
    assert port(v1_sim, status["portId"])["security_groups"] == [SG_WEB, SG_DB]
    assert status["securityGroupIds"] == [SG_WEB, SG_DB]
    assert jobs(v1_sim) == before + 1
    calls = v1_sim.state()["calls"]
    assert calls.get("POST /v2.1/{project_id}/servers/{server_id}/os-interface", 0) == 0

    port_id = status["portId"]
    kube.delete_attachment(namespace, "v1nic")
    wait_for(lambda: not kube.attachment_exists(namespace, "v1nic"), timeout=60, what="deleted")
    assert v1_sim.ports_of(server) == []
    assert port_id not in v1_sim.state()["freePorts"]  # v1 deletes the port with the NIC
    assert sum(v1_sim.state()["jobs"]["batchDeleteNics"].values()) >= 1


def test_a_port_named_by_id_survives_detach_on_v1(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    free = v1_sim.add_port(NET)["port_id"]
    kube.create_attachment(namespace, "byid", {"cloudRef": {"name": "v1"}, "serverId": server, "portId": free})
    wait_for(lambda: ready(kube, namespace, "byid"), timeout=60, what="Ready")
    kube.delete_attachment(namespace, "byid")
    wait_for(lambda: not kube.attachment_exists(namespace, "byid"), timeout=60, what="deleted")
    assert v1_sim.ports_of(server) == [] and free in v1_sim.state()["freePorts"]


def test_a_crash_while_the_job_runs_resumes_that_job(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    v1_sim.behaviour(jobTime=15.0)  # longer than a restart takes, so the restarted operator meets it RUNNING
    try:
        before = jobs(v1_sim)
        kube.create_attachment(namespace, "crash", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
        wait_for(
            lambda: kube.get_attachment(namespace, "crash").get("status", {}).get("jobId"),
            timeout=30,
            what="jobId recorded",
        )
        own_operator.kill()
        own_operator.start()
        # The restarted operator finds the job still running and no NIC yet: only the job ID says one is coming.
        assert v1_sim.ports_of(server) == []
        wait_for(
            lambda: (
                (condition(kube.get_attachment(namespace, "crash"), "Ready") or {}).get("reason") == "JobRunning"
                and v1_sim.ports_of(server) == []
            ),
            timeout=10,
            what="the restarted operator following the running job",
        )
        obj = wait_for(lambda: ready(kube, namespace, "crash"), timeout=60, what="Ready after the restart")
    finally:
        v1_sim.behaviour(jobTime=JOB_TIME)
    assert jobs(v1_sim) == before + 1  # no second job
    assert [n["port_id"] for n in v1_sim.ports_of(server)] == [obj["status"]["portId"]]


def test_a_lost_job_id_waits_for_the_nic_and_never_posts_twice(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    v1_sim.behaviour(lostReplyRate=1.0, jobTime=5.0)
    try:
        before = jobs(v1_sim)
        kube.create_attachment(namespace, "lost", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
        waiting = wait_for(
            lambda: (
                (o := kube.get_attachment(namespace, "lost"))
                and (condition(o, "Ready") or {}).get("reason") == "AttachUnconfirmed"
                and o
            ),
            timeout=30,
            what="AttachUnconfirmed while the job runs",
        )
        assert "jobId" not in waiting.get("status", {})
        v1_sim.behaviour(lostReplyRate=0.0)
        obj = wait_for(lambda: ready(kube, namespace, "lost"), timeout=60, what="the NIC adopted")
    finally:
        v1_sim.behaviour(lostReplyRate=0.0, jobTime=JOB_TIME)
    assert jobs(v1_sim) == before + 1
    assert [n["port_id"] for n in v1_sim.ports_of(server)] == [obj["status"]["portId"]]


def test_port_properties_change_in_place_and_drift_is_repaired(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(
        namespace,
        "props",
        {"cloudRef": {"name": "v21"}, "serverId": server, "netId": NET, "securityGroupIds": [SG_WEB]},
    )
    obj = wait_for(
        lambda: (o := ready(kube, namespace, "props")) and o["status"].get("securityGroupIds") == [SG_WEB] and o,
        timeout=60,
        what="Ready with its group",
    )
    port_id = obj["status"]["portId"]
    assert port(v1_sim, port_id)["security_groups"] == [SG_WEB]
    posts = v1_sim.calls("POST")
    deletes = v1_sim.calls("DELETE")

    kube.patch_attachment(namespace, "props", {"spec": {"securityGroupIds": [SG_DB, SG_WEB], "sourceDestCheck": False}})
    obj = wait_for(
        lambda: (o := ready(kube, namespace, "props")) and o["status"].get("sourceDestCheck") is False and o,
        timeout=30,
        what="the port updated in place",
    )
    assert obj["status"]["portId"] == port_id and obj["status"]["securityGroupIds"] == [SG_DB, SG_WEB]
    assert port(v1_sim, port_id)["allowed_address_pairs"] == [{"ip_address": "1.1.1.1/0"}]
    assert (condition(obj, "Synced") or {}).get("status") == "True"
    assert (v1_sim.calls("POST"), v1_sim.calls("DELETE")) == (posts, deletes)  # no detach, no attach

    set_port(v1_sim, port_id, security_groups=[SG_DEFAULT])  # someone used the console
    wait_for(lambda: port(v1_sim, port_id)["security_groups"] == [SG_DB, SG_WEB], timeout=30, what="drift repaired")
    assert ready(kube, namespace, "props") is not None
    assert [n["port_id"] for n in v1_sim.ports_of(server)] == [port_id]

    kube.patch_attachment(namespace, "props", {"spec": {"securityGroupIds": ["5a5a5a5a-0000-4000-8000-0000000000ff"]}})
    obj = wait_for(
        lambda: (
            (o := kube.get_attachment(namespace, "props"))
            and (condition(o, "Synced") or {}).get("reason") == "PortUpdateFailed"
            and o
        ),
        timeout=30,
        what="Synced=False PortUpdateFailed",
    )
    assert (condition(obj, "Ready") or {}).get("status") == "True"
    assert [n["port_id"] for n in v1_sim.ports_of(server)] == [port_id]


def test_ipv6_on_v1_and_refused_on_v2_1(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    calls = v1_sim.calls_on(server)
    kube.create_attachment(
        namespace, "six21", {"cloudRef": {"name": "v21"}, "serverId": server, "netId": NET, "ipv6": {"enabled": True}}
    )
    obj = wait_for(lambda: ready(kube, namespace, "six21", "False"), timeout=30, what="Ready=False on v2.1")
    assert (condition(obj, "Ready") or {}).get("reason") == "UnsupportedByApi"
    assert v1_sim.calls_on(server) == calls  # no cloud call for it

    kube.create_attachment(
        namespace,
        "six",
        {
            "cloudRef": {"name": "v1"},
            "serverId": server,
            "netId": NET,
            "ipv6": {"enabled": True, "bandwidthId": BANDWIDTH},
        },
    )
    obj = wait_for(lambda: ready(kube, namespace, "six"), timeout=60, what="Ready on v1 with IPv6")
    subnets = {ip["subnetId"]: ip["ipAddress"] for ip in obj["status"]["fixedIps"]}
    assert SUBNET in subnets and ":" in subnets[SUBNET6]


def test_a_failed_job_says_why_like_v2_1_and_makes_no_nic(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    v1_sim.add_port(NET, ipAddress="10.50.2.2")  # taken by a port nobody attached: refused only when the job runs
    before = jobs(v1_sim)
    spec = {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET, "fixedIps": [{"ipAddress": "10.50.2.2"}]}
    kube.create_attachment(namespace, "taken", spec)
    obj = wait_for(
        lambda: (
            (o := kube.get_attachment(namespace, "taken"))
            and (condition(o, "Ready") or {}).get("reason") == "IpInUse"
            and o
        ),
        timeout=60,
        what="IpInUse from the job's Ecs.0010",
    )
    assert "jobId" not in obj["status"] and "portId" not in obj["status"]
    assert "Ecs.0010" in (condition(obj, "Synced") or {}).get("message", "")
    assert v1_sim.ports_of(server) == []
    assert v1_sim.state()["jobs"]["batchAddNics"].get("FAIL", 0) >= 1 and jobs(v1_sim) == before + 1


def test_deleting_while_a_lost_job_runs_waits_for_its_nic_and_detaches_it(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    v1_sim.behaviour(lostReplyRate=1.0, jobTime=6.0)
    try:
        before = jobs(v1_sim)
        kube.create_attachment(namespace, "gone", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
        wait_for(
            lambda: (
                (condition(kube.get_attachment(namespace, "gone"), "Ready") or {}).get("reason") == "AttachUnconfirmed"
            ),
            timeout=30,
            what="AttachUnconfirmed while the job runs",
        )
        v1_sim.behaviour(lostReplyRate=0.0)
        assert v1_sim.ports_of(server) == []  # the job has not added its NIC yet
        kube.delete_attachment(namespace, "gone")
        # The deletion waits for the NIC the lost job adds: the resource is still there when the NIC appears.
        wait_for(lambda: v1_sim.ports_of(server), timeout=30, what="the lost job's NIC")
        assert kube.attachment_exists(namespace, "gone")
        wait_for(lambda: not kube.attachment_exists(namespace, "gone"), timeout=60, what="deleted")
    finally:
        v1_sim.behaviour(lostReplyRate=0.0, jobTime=JOB_TIME)
    assert jobs(v1_sim) == before + 1
    assert v1_sim.ports_of(server) == []  # detached: nothing left behind


def test_a_lost_answer_never_adopts_the_nic_of_another_attachments_running_job(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    before = jobs(v1_sim)
    v1_sim.behaviour(lostReplyRate=1.0, jobTime=10.0)  # "slow" loses its job ID; its NIC comes late
    try:
        kube.create_attachment(namespace, "slow", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
        wait_for(
            lambda: (
                (condition(kube.get_attachment(namespace, "slow"), "Ready") or {}).get("reason") == "AttachUnconfirmed"
            ),
            timeout=30,
            what="AttachUnconfirmed",
        )
        # "fast", on the same network, gets its job ID; paused at once, it does not follow the job for a while,
        # so its NIC is listed (and new to slow's baseline) long before its job's SUCCESS is written.
        v1_sim.behaviour(lostReplyRate=0.0, jobTime=3.0)
        kube.create_attachment(namespace, "fast", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
        wait_for(
            lambda: kube.get_attachment(namespace, "fast").get("status", {}).get("jobId"), timeout=30, what="jobId"
        )
        kube.patch_attachment(namespace, "fast", {"metadata": {"annotations": {"ecsnic.io/paused": "true"}}})
        assert "portId" not in kube.get_attachment(namespace, "fast")["status"]
        wait_for(lambda: len(v1_sim.ports_of(server)) == 2, timeout=30, what="both jobs' NICs")
        kube.patch_attachment(namespace, "fast", {"metadata": {"annotations": {"ecsnic.io/paused": None}}})
        fast = wait_for(lambda: ready(kube, namespace, "fast"), timeout=60, what="fast Ready")
        slow = wait_for(lambda: ready(kube, namespace, "slow"), timeout=60, what="slow adopts its own NIC")
    finally:
        v1_sim.behaviour(lostReplyRate=0.0, jobTime=JOB_TIME)
    assert jobs(v1_sim) == before + 2
    mine, theirs = slow["status"]["portId"], fast["status"]["portId"]
    assert mine != theirs  # each has its own NIC: none owned twice, none owned by nobody
    assert sorted(n["port_id"] for n in v1_sim.ports_of(server)) == sorted([mine, theirs])


def test_a_crash_while_the_delete_job_runs_sends_no_second_one(
    kube: Kube, v1_sim: SimulatorProcess, own_operator: OperatorProcess, namespace: str, server: str
) -> None:
    kube.create_attachment(namespace, "del", {"cloudRef": {"name": "v1"}, "serverId": server, "netId": NET})
    wait_for(lambda: ready(kube, namespace, "del"), timeout=60, what="Ready")
    before = jobs(v1_sim, "batchDeleteNics")
    v1_sim.behaviour(jobTime=12.0)  # longer than a restart takes
    try:
        kube.delete_attachment(namespace, "del")
        wait_for(
            lambda: kube.get_attachment(namespace, "del").get("status", {}).get("jobId"),
            timeout=30,
            what="the delete job's ID in status",
        )
        own_operator.kill()
        own_operator.start()
        wait_for(lambda: not kube.attachment_exists(namespace, "del"), timeout=90, what="deleted after the restart")
    finally:
        v1_sim.behaviour(jobTime=JOB_TIME)
    assert v1_sim.ports_of(server) == []
    assert jobs(v1_sim, "batchDeleteNics") == before + 1  # the restarted operator awaited the recorded job
