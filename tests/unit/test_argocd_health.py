"""The Argo CD health check (deploy/argocd/health.lua) run by a real Lua runtime (lupa) against status objects
built the way the operator builds them (conditions.merge with the operator's own reasons)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

from ecs_nic_operator import conditions
from ecs_nic_operator.conditions import READY, SYNCED, Condition, Reason

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "deploy" / "argocd" / "health.lua").read_text()
CLOUD_SCRIPT = (ROOT / "deploy" / "argocd" / "health-ecscloud.lua").read_text()
ECSCLOUD_ONLY = {
    Reason.SECRET_NOT_FOUND,
    Reason.SECRET_FORBIDDEN,
    Reason.CREDENTIALS_INVALID,
    Reason.ENDPOINT_UNREACHABLE,
    Reason.ENDPOINT_INVALID,
    Reason.CONNECTED,
    Reason.CHECK_FAILED,
}
# EcsCloud reasons a person must fix (the rest pass: the endpoint may answer again).
CLOUD_TERMINAL = {
    Reason.SECRET_NOT_FOUND,
    Reason.SECRET_FORBIDDEN,
    Reason.CREDENTIALS_INVALID,
    Reason.CREDENTIALS_REJECTED,
    Reason.ENDPOINT_INVALID,
}

TERMINAL = {
    Reason.NETWORK_NOT_FOUND,
    Reason.PORT_IN_USE,
    Reason.IP_IN_USE,
    Reason.QUOTA_EXCEEDED,
    Reason.CREDENTIALS_REJECTED,
    Reason.INVALID_REQUEST,
    Reason.SERVER_NOT_FOUND,
    Reason.PORT_NOT_FOUND,
    Reason.CLOUD_NOT_FOUND,
    Reason.NAMESPACE_NOT_ALLOWED,
    Reason.NODE_NOT_FOUND,
    Reason.NODE_NO_PROVIDER_ID,
    Reason.DETACH_BLOCKED,
    Reason.PORT_CLAIMED,
    Reason.INTENT_UNVERIFIABLE,
    Reason.INTENT_KEY_UNAVAILABLE,
    Reason.ADOPTION_AMBIGUOUS,
    Reason.SERVER_LOCKED,
    Reason.SUBNET_EXHAUSTED,
    Reason.INVALID_IP,
    Reason.API_NOT_FOUND,
    Reason.NIC_LIMIT_REACHED,
    Reason.ATTACH_STUCK,
    Reason.DETACH_STUCK,
    Reason.UNSUPPORTED_BY_API,
    Reason.ATTACH_UNCONFIRMED,
    Reason.PORT_UPDATE_FAILED,
}
PASSING = {
    Reason.ATTACHING,
    Reason.PORT_DOWN,
    Reason.DETACHING,
    Reason.NIC_DETACHED,
    Reason.CLOUD_NOT_READY,
    Reason.CLOUD_UNAVAILABLE,
    Reason.THROTTLED,
    Reason.SERVER_BUSY,
    Reason.JOB_RUNNING,
}


def health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    # Argo CD hands the script the object as a Lua table; lupa's table_from builds it the same way.
    to_lua = lua.eval(
        """
        function(convert, value)
          return convert(value)
        end
        """
    )

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: convert(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([convert(v) for v in value])
        return value

    run = lua.eval(f"function(obj)\n{script}\nend")
    result = run(to_lua(convert, obj))
    return str(result["status"]), str(result["message"])


def attachment(*wanted: Condition, generation: int = 1, observed: int | None = 1, **fields: Any) -> dict[str, Any]:
    status: dict[str, Any] = dict(fields)
    if wanted:
        status["conditions"] = conditions.merge([], list(wanted), generation)
    if observed is not None and wanted:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "ecsnic.io/v1alpha1",
        "kind": "EcsNicAttachment",
        "metadata": {"name": "db", "namespace": "team-a", "generation": generation},
        "spec": {"serverId": "7b7e1f5c-0000-4000-8000-000000000001", "netId": "3cb9bc59-0000-4000-8000-000000000002"},
        "status": status,
    }


SYNCED_OK = Condition(SYNCED, True, Reason.RECONCILE_SUCCESS, "the last reconcile with the cloud succeeded")


def test_every_reason_is_classified() -> None:
    reasons = {v for k, v in vars(Reason).items() if k.isupper()}
    assert reasons - ECSCLOUD_ONLY == TERMINAL | PASSING | {Reason.ACTIVE, Reason.RECONCILE_SUCCESS, Reason.PAUSED}


def test_ready_is_healthy() -> None:
    obj = attachment(
        Condition(READY, True, Reason.ACTIVE, "port ce531f90 is ACTIVE on server 7b7e1f5c"),
        SYNCED_OK,
        serverId="7b7e1f5c-0000-4000-8000-000000000001",
        portId="ce531f90-0000-4000-8000-000000000003",
        portState="ACTIVE",
        macAddr="fa:16:3e:63:75:b2",
        fixedIps=[{"subnetId": "d9cfef77-0000-4000-8000-000000000004", "ipAddress": "192.168.1.3"}],
    )
    assert health(obj) == ("Healthy", "Active: port ce531f90 is ACTIVE on server 7b7e1f5c")


def test_ready_but_a_passing_sync_failure_stays_healthy_and_says_so() -> None:
    obj = attachment(
        Condition(READY, True, Reason.ACTIVE, "port is ACTIVE"),
        Condition(SYNCED, False, Reason.CLOUD_UNAVAILABLE, "attach: timed out"),
    )
    status, message = health(obj)
    assert status == "Healthy" and "Synced=False: CloudUnavailable" in message


def test_ready_for_an_older_generation_is_progressing() -> None:
    obj = attachment(Condition(READY, True, Reason.ACTIVE, "ok"), SYNCED_OK, generation=2, observed=1)
    assert health(obj)[0] == "Progressing"


@pytest.mark.parametrize("reason", sorted(TERMINAL))
def test_terminal_reasons_are_degraded(reason: str) -> None:
    message = f"the cloud said no ({reason})"
    # The controller sets both conditions for blocking errors, only Synced for some (Ready kept True).
    both = attachment(Condition(READY, False, reason, message), Condition(SYNCED, False, reason, message))
    synced_only = attachment(Condition(READY, True, Reason.ACTIVE, "ok"), Condition(SYNCED, False, reason, message))
    assert health(both) == ("Degraded", f"{reason}: {message}")
    assert health(synced_only)[0] == "Degraded"


@pytest.mark.parametrize("reason", sorted(PASSING))
def test_passing_reasons_are_progressing(reason: str) -> None:
    obj = attachment(Condition(READY, False, reason, "wait"), SYNCED_OK)
    assert health(obj) == ("Progressing", f"{reason}: wait")
    obj = attachment(Condition(READY, False, reason, "wait"), Condition(SYNCED, False, reason, "wait"))
    assert health(obj)[0] == "Progressing"


def test_no_status_yet_is_progressing() -> None:
    obj = attachment()
    del obj["status"]
    assert health(obj) == ("Progressing", "waiting for the operator to report status")
    assert health(attachment())[0] == "Progressing"


def test_paused_is_suspended() -> None:
    obj = attachment(
        Condition(READY, True, Reason.ACTIVE, "ok"),
        Condition(SYNCED, False, Reason.PAUSED, 'the ecsnic.io/paused annotation is "true": no cloud calls'),
    )
    assert health(obj)[0] == "Suspended"


def test_paused_annotation_is_suspended_before_the_operator_says_so() -> None:
    obj = attachment(Condition(READY, False, Reason.PORT_DOWN, "port is DOWN"), SYNCED_OK)
    obj["metadata"]["annotations"] = {"ecsnic.io/paused": "true"}
    assert health(obj)[0] == "Suspended"
    obj = attachment()
    obj["metadata"]["annotations"] = {"ecsnic.io/paused": "true"}
    assert health(obj)[0] == "Suspended"
    obj["metadata"]["annotations"] = {"ecsnic.io/paused": "false"}
    assert health(obj)[0] == "Progressing"


def cloud_not_ready(cloud_reason: str) -> dict[str, Any]:
    # The controller's message for an attachment whose EcsCloud is not Ready names the cloud's reason.
    message = f"EcsCloud 'default' is not Ready: {cloud_reason}: Secret ecs-nic-system/creds not found"
    return attachment(
        Condition(READY, False, Reason.CLOUD_NOT_READY, message),
        Condition(SYNCED, False, Reason.CLOUD_NOT_READY, message),
    )


@pytest.mark.parametrize("cloud_reason", sorted(CLOUD_TERMINAL))
def test_cloud_not_ready_for_a_reason_a_person_must_fix_is_degraded(cloud_reason: str) -> None:
    status, message = health(cloud_not_ready(cloud_reason))
    assert status == "Degraded" and cloud_reason in message


def test_cloud_not_ready_for_a_passing_reason_is_progressing() -> None:
    assert health(cloud_not_ready(Reason.ENDPOINT_UNREACHABLE))[0] == "Progressing"
    assert health(cloud_not_ready("Pending"))[0] == "Progressing"


def test_credentials_rejected_is_degraded_even_while_still_ready() -> None:
    obj = attachment(
        Condition(READY, True, Reason.ACTIVE, "ok"),
        Condition(SYNCED, False, Reason.CREDENTIALS_REJECTED, "EcsCloud 'default' credentials rejected: 401"),
    )
    assert health(obj) == ("Degraded", "CredentialsRejected: EcsCloud 'default' credentials rejected: 401")


def test_a_condition_without_a_reason_does_not_crash() -> None:
    obj = attachment()
    obj["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False", "message": "written by something else"},
            {"type": "Synced", "status": "False", "message": "no reason either"},
        ]
    }
    assert health(obj) == ("Progressing", "Ready=False: written by something else")
    obj["status"]["conditions"][0] = {"type": "Ready", "status": "True"}
    assert health(obj) == ("Healthy", "Ready=True (Synced=False: Synced=False: no reason either)")


def ecscloud(ready: bool | None, reason: str | None = None, message: str = "", generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "ecsnic.io/v1alpha1",
        "kind": "EcsCloud",
        "metadata": {"name": "default", "generation": generation},
        "spec": {"endpoint": "https://ecs.example.com", "projectId": "p"},
    }
    if ready is not None:
        cond: dict[str, Any] = {"type": READY, "status": "True" if ready else "False", "message": message}
        if reason is not None:
            cond["reason"] = reason
        obj["status"] = {"observedGeneration": 1, "conditions": [cond]}
    return obj


def test_ecscloud_connected_is_healthy() -> None:
    obj = ecscloud(True, Reason.CONNECTED, "credentials read; https://ecs.example.com answered")
    assert health(obj, CLOUD_SCRIPT) == ("Healthy", "Connected: credentials read; https://ecs.example.com answered")


@pytest.mark.parametrize("reason", sorted(CLOUD_TERMINAL))
def test_ecscloud_reasons_a_person_must_fix_are_degraded(reason: str) -> None:
    assert health(ecscloud(False, reason, "fix it"), CLOUD_SCRIPT) == ("Degraded", f"{reason}: fix it")


def test_ecscloud_passing_states_are_progressing() -> None:
    assert health(ecscloud(False, Reason.ENDPOINT_UNREACHABLE, "timed out"), CLOUD_SCRIPT)[0] == "Progressing"
    assert health(ecscloud(None), CLOUD_SCRIPT) == ("Progressing", "waiting for the operator to check the cloud")
    stale = ecscloud(True, Reason.CONNECTED, "ok", generation=2)
    assert health(stale, CLOUD_SCRIPT)[0] == "Progressing"
    assert health(ecscloud(False, None, "no reason given"), CLOUD_SCRIPT) == (
        "Progressing",
        "Ready=False: no reason given",
    )


def test_every_ecscloud_reason_is_classified() -> None:
    cloud_reasons = ECSCLOUD_ONLY | {Reason.CREDENTIALS_REJECTED}
    passing = cloud_reasons - CLOUD_TERMINAL - {Reason.CONNECTED}
    assert passing == {Reason.ENDPOINT_UNREACHABLE, Reason.CHECK_FAILED}  # both may pass by themselves
    for reason in passing:
        assert health(ecscloud(False, reason, "x"), CLOUD_SCRIPT)[0] == "Progressing"


def test_argocd_cm_snippet_carries_the_same_scripts() -> None:
    cm = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"]["resource.customizations.health.ecsnic.io_EcsNicAttachment"].strip() == SCRIPT.strip()
    assert cm["data"]["resource.customizations.health.ecsnic.io_EcsCloud"].strip() == CLOUD_SCRIPT.strip()
