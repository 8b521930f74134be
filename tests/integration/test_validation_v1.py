"""Server-side validation of the v1 / port-property fields (issue 13) on the real API server: EcsCloud `api` and
`networkEndpoint`, EcsNicAttachment `securityGroupIds`, `sourceDestCheck`, `allowedAddressPairs`, `ipv6`. Bad
input is refused naming the field; the port properties may change on a live object, `ipv6` may not."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tests.integration.kube import Kube
from tests.integration.test_validation import PORT_ID, Applier, Manifest, attachment, cloud, setting, without

pytestmark = pytest.mark.integration


@pytest.fixture
def applier(kube: Kube, namespace: str) -> Iterator[Applier]:
    # The session's control plane fixture already waited for the kinds to show in discovery.
    applier = Applier(kube, namespace)
    yield applier
    applier.cleanup()


SG_A = "aaaaaaaa-0000-4000-8000-000000000001"
SG_B = "aaaaaaaa-0000-4000-8000-000000000002"
BANDWIDTH = "cccccccc-0000-4000-8000-00000000000b"

VALID = {
    "cloud-v1-network": cloud(api="v1", networkEndpoint="https://vpc.ap-southeast-1.myhuaweicloud.com"),
    "cloud-v1-loopback-network": cloud(
        api="v1", endpoint="http://127.0.0.1:8774", networkEndpoint="http://127.0.0.1:8774"
    ),
    "port-properties": attachment(
        securityGroupIds=[SG_A, SG_B],
        sourceDestCheck=False,
        allowedAddressPairs=[
            {"ipAddress": "10.0.0.100/32", "macAddress": "fa:16:3e:00:00:01"},
            {"ipAddress": "fd00::5"},
        ],
    ),
    "ipv6": attachment(ipv6={"enabled": True, "bandwidthId": BANDWIDTH}),
    "port-by-id-with-groups": attachment(netId=None, portId=PORT_ID, securityGroupIds=[SG_A]),
}


@pytest.mark.parametrize("manifest", VALID.values(), ids=VALID.keys())
def test_valid_objects_are_accepted(applier: Applier, manifest: Manifest) -> None:
    obj = applier.accepted(manifest)
    for key, value in manifest["spec"].items():
        assert obj["spec"][key] == value, key


def test_api_defaults_to_v2_1(applier: Applier) -> None:
    assert applier.accepted(cloud())["spec"]["api"] == "v2.1"


INVALID: list[tuple[str, Manifest, list[str]]] = [
    ("api-v3", cloud(api="v3"), ["spec.api", "Unsupported value"]),
    ("network-http-remote", cloud(networkEndpoint="http://vpc.example.com"), ["spec.networkEndpoint", "https://"]),
    ("sg-not-uuid", attachment(securityGroupIds=["default"]), ["spec.securityGroupIds[0]", "should match"]),
    ("sg-duplicate", attachment(securityGroupIds=[SG_A, SG_A]), ["spec.securityGroupIds[1]", "Duplicate value"]),
    (
        "sg-eleven",
        attachment(securityGroupIds=[f"aaaaaaaa-0000-4000-8000-0000000000{i:02d}" for i in range(11)]),
        ["spec.securityGroupIds", "at most 10"],
    ),
    ("sourceDestCheck-string", attachment(sourceDestCheck="off"), ["spec.sourceDestCheck", "boolean"]),
    (
        "pair-not-ip",
        attachment(allowedAddressPairs=[{"ipAddress": "vip"}]),
        ["spec.allowedAddressPairs[0].ipAddress", "an IP address or a CIDR"],
    ),
    (
        "pair-no-ip",
        attachment(allowedAddressPairs=[{"macAddress": "fa:16:3e:00:00:01"}]),
        ["spec.allowedAddressPairs[0].ipAddress", "Required"],
    ),
    (
        "pair-bad-mac",
        attachment(allowedAddressPairs=[{"ipAddress": "10.0.0.1", "macAddress": "fa16"}]),
        ["spec.allowedAddressPairs[0].macAddress", "should match"],
    ),
    (
        "ipv6-with-portId",
        attachment(netId=None, portId=PORT_ID, ipv6={"enabled": True}),
        ["spec.ipv6", "only be set together with spec.netId"],
    ),
    (
        "ipv6-bandwidth-disabled",
        attachment(ipv6={"enabled": False, "bandwidthId": BANDWIDTH}),
        ["spec.ipv6", "needs spec.ipv6.enabled true"],
    ),
    ("ipv6-no-enabled", attachment(ipv6={"bandwidthId": BANDWIDTH}), ["spec.ipv6.enabled", "Required"]),
    (
        "ipv6-bandwidth-not-uuid",
        attachment(ipv6={"enabled": True, "bandwidthId": "bw-1"}),
        ["spec.ipv6.bandwidthId", "should match"],
    ),
]


@pytest.mark.parametrize(("manifest", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected_naming_the_field(applier: Applier, manifest: Manifest, expected: list[str]) -> None:
    message = applier.rejected(manifest, *expected)
    assert "is invalid" in message or "Invalid value" in message, message


def test_port_properties_change_on_a_live_object_and_ipv6_does_not(applier: Applier) -> None:
    manifest = attachment(securityGroupIds=[SG_A], ipv6={"enabled": True})
    before = applier.accepted(manifest)
    changed = copy.deepcopy(manifest)
    setting("spec.securityGroupIds", [SG_B, SG_A])(changed)
    setting("spec.sourceDestCheck", False)(changed)
    setting("spec.allowedAddressPairs", [{"ipAddress": "10.0.0.100/32"}])(changed)
    after = applier.accepted(changed)
    assert after["spec"]["securityGroupIds"] == [SG_B, SG_A] and after["spec"]["sourceDestCheck"] is False
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    removed = copy.deepcopy(changed)
    without("spec.securityGroupIds")(removed)
    assert "securityGroupIds" not in applier.accepted(removed)["spec"]

    for mutate, expected in (
        (setting("spec.ipv6", {"enabled": False}), "spec.ipv6 is immutable"),
        (without("spec.ipv6"), "spec.ipv6 is immutable"),
    ):
        bad = copy.deepcopy(removed)
        mutate(bad)
        applier.rejected(bad, expected)
    plain = applier.accepted(attachment(name="plain"))
    bad = copy.deepcopy(attachment(name="plain"))
    setting("spec.ipv6", {"enabled": True})(bad)
    applier.rejected(bad, "spec.ipv6 is immutable")
    assert "ipv6" not in applier.get(plain)["spec"]
