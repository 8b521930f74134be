"""The rules of reconcile/jobs.py and reconcile/ports.py without a cloud: how a job reads, how a failed job
becomes the error (and reason) the synchronous API would have given, how long a lost job ID is waited for, and
which allowed address pairs a port should have."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ecs_nic_operator.cloud import errors
from ecs_nic_operator.cloud.models import AddressPair, Job, Port
from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.reconcile.jobs import Unanswered, job_error, unanswered, unanswered_delete
from ecs_nic_operator.reconcile.ports import wanted_pairs
from ecs_nic_operator.resources import AttachmentSpec, Intent, PortProperties, port_properties_status

NIC = "0c1d2e3f-0000-4000-8000-000000000001"


def job(status: str, code: str | None = None, nic: str | None = None) -> Job:
    sub = {
        "status": status,
        "entities": {"server_id": "s", **({"nic_id": nic} if nic else {})},
        "error_code": code,
        "fail_reason": "why" if code else None,
    }
    return Job.from_api({"status": status, "job_id": "j1", "job_type": "batchAddNics", "entities": {"sub_jobs": [sub]}})


def test_a_job_reads_its_nic_and_its_failure_from_the_sub_jobs() -> None:
    assert job("RUNNING").done is False
    done = job("SUCCESS", nic=f" {NIC}")
    assert done.succeeded and done.nic_ids == (NIC,)
    failed = job("FAIL", code="Ecs.0010")
    assert failed.done and not failed.succeeded and (failed.error_code, failed.fail_reason) == ("Ecs.0010", "why")
    with pytest.raises(ValueError):
        Job.from_api({"status": "SUCCESS", "entities": {"sub_jobs": "nope"}})


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("Ecs.0010", errors.InUse),
        ("Ecs.0012", errors.SubnetExhausted),
        ("Ecs.0050", errors.QuotaExceeded),
        ("Ecs.1000", errors.CloudInternalError),
        (None, errors.CloudInternalError),
    ],
)
def test_a_failed_job_is_the_error_the_synchronous_call_would_raise(
    code: str | None, cls: type[errors.CloudError]
) -> None:
    err = job_error(job("FAIL", code=code))
    assert type(err) is cls and "j1" in err.message


@pytest.mark.parametrize(
    ("rule", "way_out"),
    [
        (unanswered, "remove the ecsnic.io/attach-intent"),
        # A deletion keeps the finalizer past the bound (a NIC that still appears is detached).
        (unanswered_delete, "spec.deletionPolicy: Orphan"),
    ],
)
def test_a_lost_job_id_is_waited_for_then_blocks_and_says_how_to_let_go(
    rule: Callable[..., Unanswered], way_out: str
) -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    intent = Intent(started.strftime("%Y-%m-%dT%H:%M:%SZ"), ("p",), "srv")
    soon = rule(intent, "srv", bound=300, poll=1.0, retry=60, now=started + timedelta(seconds=10))
    assert not soon.blocked and soon.retry_in == 1.0
    late = rule(intent, "srv", bound=300, poll=1.0, retry=60, now=started + timedelta(seconds=301))
    assert late.blocked and late.retry_in == 60
    assert {c.reason for c in soon.conditions + late.conditions} == {Reason.ATTACH_UNCONFIRMED}
    assert way_out in late.conditions[0].message


ANY = AddressPair("1.1.1.1/0")
VIP = AddressPair("10.0.0.100/32")
OTHER = AddressPair("10.0.0.200/32", "fa:16:3e:00:00:02")


def port(*pairs: AddressPair) -> Port:
    return Port(NIC, "net", "srv", ("sg",), pairs, True)


def test_wanted_pairs_touch_only_what_the_spec_manages() -> None:
    assert wanted_pairs(PortProperties(security_groups=("sg",)), port(OTHER)) is None
    # sourceDestCheck alone keeps the other pairs and adds or removes only the "any source" one.
    assert wanted_pairs(PortProperties(source_dest_check=False), port(OTHER)) == (OTHER, ANY)
    assert wanted_pairs(PortProperties(source_dest_check=True), port(OTHER, ANY)) == (OTHER,)
    # allowedAddressPairs alone replaces the others and keeps the "any source" pair as it is.
    assert wanted_pairs(PortProperties(address_pairs=(VIP,)), port(OTHER, ANY)) == (VIP, ANY)
    assert wanted_pairs(PortProperties(address_pairs=(), source_dest_check=True), port(OTHER, ANY)) == ()


def test_status_shows_the_any_source_pair_as_source_dest_check() -> None:
    shown = port_properties_status(port(OTHER, ANY))
    assert shown == {
        "securityGroupIds": ["sg"],
        "sourceDestCheck": False,
        "allowedAddressPairs": [{"ipAddress": "10.0.0.200/32", "macAddress": "fa:16:3e:00:00:02"}],
    }


def test_the_spec_parses_the_new_fields() -> None:
    spec = AttachmentSpec.from_body(
        {
            "serverId": "S",
            "netId": "N",
            "securityGroupIds": ["A", "b"],
            "sourceDestCheck": False,
            "allowedAddressPairs": [{"ipAddress": "10.0.0.1", "macAddress": "FA:16:3E:00:00:01"}],
            "ipv6": {"enabled": True, "bandwidthId": "bw"},
        }
    )
    assert spec.security_groups == ("a", "b") and spec.source_dest_check is False
    assert spec.address_pairs == (AddressPair("10.0.0.1", "fa:16:3e:00:00:01"),)
    assert (spec.ipv6, spec.ipv6_bandwidth) == (True, "bw")
    plain = AttachmentSpec.from_body({"serverId": "S", "netId": "N"})
    assert not plain.port_properties.managed and plain.ipv6 is False
