"""Server-side validation as a user meets it: `kubectl apply -f -` of a bad EcsNicAttachment or EcsCloud fails
at once, and the API server's message names the offending field. No operator runs here."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from ecs_nic_operator import GROUP, VERSION
from tests.integration.kube import Kube, wait_for

pytestmark = pytest.mark.integration

SERVER_ID = "7b7e1f5c-4e4a-4f0e-9a8c-2f1d3c4b5a69"
OTHER_SERVER_ID = "0b4c5d6e-7f80-4912-a3b4-c5d6e7f80912"
NET_ID = "3cb9bc59-5699-4588-a4b1-b87f96708bc6"
OTHER_NET_ID = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
PORT_ID = "ce531f90-199f-48c0-816c-13e38010b442"
OTHER_PORT_ID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
PROJECT_ID = "0605767ea3000f0b2f0ac01c2e4ce6bd"

Manifest = dict[str, Any]
Mutation = Callable[[Manifest], None]


@pytest.fixture(scope="module", autouse=True)
def kinds_discoverable(kube: Kube) -> None:
    """Established is not the end: kubectl finds a new kind only once the API server's discovery lists it."""
    wait_for(
        lambda: kube.kubectl("get", "ecsnic,ecsclouds", "-A", check=False).returncode == 0,
        timeout=30,
        what="ecsnic and ecsclouds in discovery",
    )


# --- manifests


def attachment(name: str = "nic", **spec: Any) -> Manifest:
    base: dict[str, Any] = {"serverId": SERVER_ID, "netId": NET_ID}
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcsNicAttachment",
        "metadata": {"name": name},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def cloud(**spec: Any) -> Manifest:
    base: dict[str, Any] = {
        "endpoint": "https://ecs.ap-southeast-1.myhuaweicloud.com",
        "projectId": PROJECT_ID,
        "region": "ap-southeast-1",
        "credentials": {
            "type": "AKSK",
            "secretRef": {"namespace": "ecs-nic-system", "name": "ecs-credentials"},
        },
        "rateLimit": {"qps": 10, "burst": 20},
        "namespaceSelector": {},
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcsCloud",
        "metadata": {"name": "cloud"},  # replaced by a unique name: EcsCloud is cluster-scoped
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def without(key: str) -> Mutation:
    """Remove a (dotted) key from the manifest."""

    def mutate(manifest: Manifest) -> None:
        *parents, last = key.split(".")
        node = manifest
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


def setting(key: str, value: Any) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        *parents, last = key.split(".")
        node = manifest
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def secret_ref(**ref: str) -> dict[str, Any]:
    return {"type": "AKSK", "secretRef": ref}


# --- harness


class Applier:
    """Submits manifests with `kubectl apply -f -` in one test namespace; names EcsClouds uniquely."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.clouds: list[str] = []

    def prepare(self, manifest: Manifest) -> Manifest:
        manifest = copy.deepcopy(manifest)
        if manifest["kind"] == "EcsCloud":
            manifest["metadata"]["name"] = f"{self.namespace}-{manifest['metadata']['name']}"[:63].strip("-")
            self.clouds.append(manifest["metadata"]["name"])
        return manifest

    def apply(self, manifest: Manifest) -> Any:
        return self.kube.kubectl(
            "apply",
            "-n",
            self.namespace,
            "-f",
            "-",
            stdin=yaml.safe_dump(self.prepare(manifest)),
            check=False,
        )

    def accepted(self, manifest: Manifest) -> Manifest:
        result = self.apply(manifest)
        assert result.returncode == 0, f"a valid {manifest['kind']} was rejected:\n{result.stderr}"
        return self.get(manifest)

    def rejected(self, manifest: Manifest, *expected: str) -> str:
        result = self.apply(manifest)
        assert result.returncode != 0, f"an invalid {manifest['kind']} was accepted:\n{yaml.safe_dump(manifest)}"
        for text in expected:
            assert text in result.stderr, f"{text!r} not in the API server's message:\n{result.stderr}"
        message: str = result.stderr
        return message

    def get(self, manifest: Manifest) -> Manifest:
        name = self.prepare(manifest)["metadata"]["name"] if manifest["kind"] == "EcsCloud" else None
        resource = "ecsclouds" if manifest["kind"] == "EcsCloud" else "ecsnicattachments"
        name = name or manifest["metadata"]["name"]
        out = self.kube.kubectl("get", resource, name, "-n", self.namespace, "-o", "json").stdout
        result: Manifest = json.loads(out)
        return result

    def cleanup(self) -> None:
        for name in set(self.clouds):
            self.kube.kubectl("delete", "ecsclouds", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture
def applier(kube: Kube, namespace: str) -> Iterator[Applier]:
    applier = Applier(kube, namespace)
    yield applier
    applier.cleanup()


# --- valid objects are accepted

VALID = {
    "server+net": attachment(),
    "server+net+ipv4": attachment(fixedIps=[{"ipAddress": "192.168.1.3"}]),
    "server+net+ipv6": attachment(fixedIps=[{"ipAddress": "fd00::1:3"}]),
    "node+port": attachment(serverId=None, netId=None, nodeName="worker-3", portId=PORT_ID),
    "node-with-dots+net": attachment(serverId=None, nodeName="ip-10-0-0-1.ec2.internal"),
    "uppercase-uuid": attachment(serverId=SERVER_ID.upper()),
    "cloudRef+orphan": attachment(cloudRef={"name": "default"}, deletionPolicy="Orphan"),
    "cloud-https": cloud(),
    "cloud-minimal": cloud(region=None, rateLimit=None, namespaceSelector=None),
    "cloud-http-127.0.0.1": cloud(endpoint="http://127.0.0.1:8774"),
    "cloud-http-localhost": cloud(endpoint="http://localhost:8774/"),
    "cloud-http-[::1]": cloud(endpoint="http://[::1]:8774"),
    "cloud-token": cloud(credentials={"type": "Token", "secretRef": {"namespace": "ns", "name": "tok"}}),
    "cloud-password-selector": cloud(
        credentials={"type": "Password", "secretRef": {"namespace": "ns", "name": "pw"}},
        rateLimit={"qps": 0.5, "burst": 1},
        namespaceSelector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
    ),
}


@pytest.mark.parametrize("manifest", VALID.values(), ids=VALID.keys())
def test_valid_objects_are_accepted(applier: Applier, manifest: Manifest) -> None:
    obj = applier.accepted(manifest)
    for key, value in manifest["spec"].items():
        assert obj["spec"][key] == value, key
    if manifest["kind"] == "EcsNicAttachment":
        assert obj["spec"]["deletionPolicy"] == manifest["spec"].get("deletionPolicy", "Delete")


# --- invalid objects are rejected with a message naming the field

INVALID: list[tuple[str, Manifest, list[str]]] = [
    # EcsNicAttachment: one of / only with / at most one
    ("netId-and-portId", attachment(portId=PORT_ID), ["exactly one of spec.netId or spec.portId"]),
    ("neither-netId-nor-portId", attachment(netId=None), ["exactly one of spec.netId or spec.portId"]),
    (
        "fixedIps-with-portId",
        attachment(netId=None, portId=PORT_ID, fixedIps=[{"ipAddress": "192.168.1.3"}]),
        ["spec.fixedIps", "may only be set together with spec.netId"],
    ),
    (
        "two-fixedIps",
        attachment(fixedIps=[{"ipAddress": "192.168.1.3"}, {"ipAddress": "192.168.1.4"}]),
        ["spec.fixedIps", "at most 1 item"],
    ),
    (
        "empty-fixedIps-entry",
        attachment(fixedIps=[{}]),
        ["spec.fixedIps[0].ipAddress", "Required value"],
    ),
    (
        "fixedIps-not-a-list",
        attachment(fixedIps={"ipAddress": "192.168.1.3"}),
        ["spec.fixedIps"],
    ),
    (
        "ip-octet-300",
        attachment(fixedIps=[{"ipAddress": "192.168.1.300"}]),
        ["spec.fixedIps[0].ipAddress", "must be a valid IPv4 or IPv6 address"],
    ),
    (
        "ip-abc",
        attachment(fixedIps=[{"ipAddress": "abc"}]),
        ["spec.fixedIps[0].ipAddress", "must be a valid IPv4 or IPv6 address"],
    ),
    (
        "ip-with-prefix",
        attachment(fixedIps=[{"ipAddress": "192.168.1.3/24"}]),
        ["spec.fixedIps[0].ipAddress", "must be a valid IPv4 or IPv6 address"],
    ),
    (
        "ip-empty",
        attachment(fixedIps=[{"ipAddress": ""}]),
        ["spec.fixedIps[0].ipAddress", "must be a valid IPv4 or IPv6 address"],
    ),
    # EcsNicAttachment: UUID syntax
    ("serverId-not-uuid", attachment(serverId="i-12345"), ["spec.serverId", "should match"]),
    (
        "netId-not-uuid",
        attachment(netId="3cb9bc59-5699-4588-a4b1-b87f96708bcZ"),
        ["spec.netId", "should match"],
    ),
    ("portId-not-uuid", attachment(netId=None, portId="ce531f90199f48c0816c13e38010b442"), ["spec.portId"]),
    ("netId-uuid-with-braces", attachment(netId="{" + NET_ID + "}"), ["spec.netId", "should match"]),
    ("serverId-not-a-string", attachment(serverId=12345), ["spec.serverId", "string"]),
    # EcsNicAttachment: server
    (
        "serverId-and-nodeName",
        attachment(nodeName="worker-3"),
        ["exactly one of spec.serverId or spec.nodeName"],
    ),
    (
        "neither-serverId-nor-nodeName",
        attachment(serverId=None),
        ["exactly one of spec.serverId or spec.nodeName"],
    ),
    ("nodeName-uppercase-underscore", attachment(serverId=None, nodeName="Worker_3"), ["spec.nodeName"]),
    ("nodeName-empty", attachment(serverId=None, nodeName=""), ["spec.nodeName"]),
    ("nodeName-too-long", attachment(serverId=None, nodeName="a" * 254), ["spec.nodeName", "253"]),
    # EcsNicAttachment: the rest
    (
        "deletionPolicy-Keep",
        attachment(deletionPolicy="Keep"),
        ["spec.deletionPolicy", '"Keep"', "Delete", "Orphan"],
    ),
    ("deletionPolicy-lowercase", attachment(deletionPolicy="delete"), ["spec.deletionPolicy"]),
    ("cloudRef-uppercase", attachment(cloudRef={"name": "My_Cloud"}), ["spec.cloudRef.name", "should match"]),
    ("cloudRef-without-name", attachment(cloudRef={}), ["spec.cloudRef.name", "Required value"]),
    ("cloudRef-empty-name", attachment(cloudRef={"name": ""}), ["spec.cloudRef.name"]),
    ("unknown-spec-field", attachment(networkId=NET_ID), ['unknown field "spec.networkId"']),
    ("missing-spec", {**attachment(), "spec": None}, ["spec", "Required value"]),
    # EcsCloud
    (
        "cloud-http-remote",
        cloud(endpoint="http://ecs.ap-southeast-1.myhuaweicloud.com"),
        ["spec.endpoint", "must use https://"],
    ),
    (
        "cloud-http-127-prefix-host",
        cloud(endpoint="http://127.0.0.1.nip.io:8774"),
        ["spec.endpoint", "https://"],
    ),
    ("cloud-http-localhost-userinfo", cloud(endpoint="http://localhost@evil.example.com"), ["spec.endpoint"]),
    ("cloud-http-localhost-suffix", cloud(endpoint="http://localhost.evil.example.com"), ["spec.endpoint"]),
    ("cloud-ftp", cloud(endpoint="ftp://ecs.example.com"), ["spec.endpoint"]),
    ("cloud-no-scheme", cloud(endpoint="ecs.example.com"), ["spec.endpoint"]),
    ("cloud-missing-endpoint", cloud(endpoint=None), ["spec.endpoint", "Required value"]),
    ("cloud-missing-projectId", cloud(projectId=None), ["spec.projectId", "Required value"]),
    ("cloud-bad-projectId", cloud(projectId="../../admin"), ["spec.projectId", "should match"]),
    (
        "cloud-credentials-type-Basic",
        cloud(credentials={"type": "Basic", "secretRef": {"namespace": "ns", "name": "c"}}),
        ["spec.credentials.type", '"Basic"', "AKSK", "Token", "Password"],
    ),
    (
        "cloud-missing-secretRef",
        cloud(credentials={"type": "AKSK"}),
        ["spec.credentials.secretRef", "Required value"],
    ),
    (
        "cloud-secretRef-without-namespace",
        cloud(credentials=secret_ref(name="c")),
        ["spec.credentials.secretRef.namespace", "Required value"],
    ),
    ("cloud-missing-credentials", cloud(credentials=None), ["spec.credentials", "Required value"]),
    ("cloud-qps-zero", cloud(rateLimit={"qps": 0, "burst": 20}), ["spec.rateLimit.qps", "at least 0.1"]),
    ("cloud-qps-negative", cloud(rateLimit={"qps": -1, "burst": 20}), ["spec.rateLimit.qps"]),
    ("cloud-qps-below-0.1", cloud(rateLimit={"qps": 0.05, "burst": 20}), ["spec.rateLimit.qps", "0.1"]),
    ("cloud-burst-negative", cloud(rateLimit={"qps": 10, "burst": -1}), ["spec.rateLimit.burst"]),
    ("cloud-burst-zero", cloud(rateLimit={"qps": 10, "burst": 0}), ["spec.rateLimit.burst"]),
    ("cloud-burst-fraction", cloud(rateLimit={"qps": 10, "burst": 1.5}), ["spec.rateLimit.burst"]),
    (
        "cloud-selector-bad-operator",
        cloud(namespaceSelector={"matchExpressions": [{"key": "team", "operator": "Equals"}]}),
        ["spec.namespaceSelector.matchExpressions[0].operator"],
    ),
    ("cloud-missing-spec", {**cloud(), "spec": None}, ["spec", "Required value"]),
]


@pytest.mark.parametrize(("manifest", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected_naming_the_field(applier: Applier, manifest: Manifest, expected: list[str]) -> None:
    if manifest.get("spec", {}) is None:
        manifest = {k: v for k, v in manifest.items() if k != "spec"}
    message = applier.rejected(manifest, *expected)
    assert "is invalid" in message or "unknown field" in message, message
    # Nothing was stored.
    resource = "ecsclouds" if manifest["kind"] == "EcsCloud" else "ecsnicattachments"
    listed = applier.kube.kubectl("get", resource, "-n", applier.namespace, "-o", "name").stdout
    assert applier.prepare(manifest)["metadata"]["name"] not in listed


def test_the_python_client_is_rejected_the_same_way(kube: Kube, namespace: str) -> None:
    with pytest.raises(client.ApiException) as excinfo:
        kube.create_attachment(namespace, "nic", {"serverId": SERVER_ID, "netId": NET_ID, "portId": PORT_ID})
    assert excinfo.value.status == 422
    body = json.loads(excinfo.value.body)
    assert body["reason"] == "Invalid"
    assert any("exactly one of spec.netId or spec.portId" in c["message"] for c in body["details"]["causes"])
    with pytest.raises(client.ApiException) as excinfo:
        kube.create_attachment(
            namespace,
            "nic",
            {"serverId": SERVER_ID, "netId": NET_ID, "fixedIps": [{"ipAddress": "10.0.0.256"}]},
        )
    fields = [c.get("field") for c in json.loads(excinfo.value.body)["details"]["causes"]]
    assert "spec.fixedIps[0].ipAddress" in fields


def test_several_mistakes_are_all_reported_at_once(applier: Applier) -> None:
    # Every schema error is listed in one answer...
    applier.rejected(
        attachment(serverId="i-1", netId="n-1", fixedIps=[{}], deletionPolicy="Keep", cloudRef={"name": "A"}),
        "spec.serverId",
        "spec.netId",
        "spec.fixedIps[0].ipAddress",
        "spec.deletionPolicy",
        "spec.cloudRef.name",
    )
    # ...and so is every CEL rule, once the schema is satisfied.
    applier.rejected(
        attachment(nodeName="worker-3", portId=PORT_ID, fixedIps=[{"ipAddress": "abc"}]),
        "exactly one of spec.serverId or spec.nodeName",
        "exactly one of spec.netId or spec.portId",
        "spec.fixedIps[0].ipAddress: Invalid value",
    )


# --- updates: spec is immutable except deletionPolicy

IMMUTABLE: list[tuple[str, Manifest, Mutation, str]] = [
    ("netId-changed", attachment(), setting("spec.netId", OTHER_NET_ID), "spec.netId is immutable"),
    (
        "serverId-changed",
        attachment(),
        setting("spec.serverId", OTHER_SERVER_ID),
        "spec.serverId is immutable",
    ),
    (
        "portId-changed",
        attachment(netId=None, portId=PORT_ID),
        setting("spec.portId", OTHER_PORT_ID),
        "spec.portId is immutable",
    ),
    (
        "nodeName-changed",
        attachment(serverId=None, nodeName="worker-3"),
        setting("spec.nodeName", "worker-4"),
        "spec.nodeName is immutable",
    ),
    (
        "fixedIps-changed",
        attachment(fixedIps=[{"ipAddress": "192.168.1.3"}]),
        setting("spec.fixedIps", [{"ipAddress": "192.168.1.4"}]),
        "spec.fixedIps is immutable",
    ),
    (
        "cloudRef-changed",
        attachment(cloudRef={"name": "default"}),
        setting("spec.cloudRef", {"name": "other"}),
        "spec.cloudRef is immutable",
    ),
    (
        "fixedIps-added",
        attachment(),
        setting("spec.fixedIps", [{"ipAddress": "192.168.1.3"}]),
        "spec is immutable after creation",
    ),
    (
        "fixedIps-removed",
        attachment(fixedIps=[{"ipAddress": "192.168.1.3"}]),
        without("spec.fixedIps"),
        "spec is immutable after creation",
    ),
    (
        "cloudRef-added",
        attachment(),
        setting("spec.cloudRef", {"name": "default"}),
        "spec is immutable after creation",
    ),
    (
        "cloudRef-removed",
        attachment(cloudRef={"name": "default"}),
        without("spec.cloudRef"),
        "spec is immutable after creation",
    ),
    (
        "serverId-to-nodeName",
        attachment(),
        lambda m: (without("spec.serverId")(m), setting("spec.nodeName", "worker-3")(m)),
        "spec is immutable after creation",
    ),
    (
        "netId-to-portId",
        attachment(),
        lambda m: (without("spec.netId")(m), setting("spec.portId", PORT_ID)(m)),
        "spec is immutable after creation",
    ),
]


@pytest.mark.parametrize(("manifest", "mutate", "expected"), [c[1:] for c in IMMUTABLE], ids=[c[0] for c in IMMUTABLE])
def test_spec_change_after_creation_is_rejected(
    applier: Applier, manifest: Manifest, mutate: Mutation, expected: str
) -> None:
    before = applier.accepted(manifest)
    changed = copy.deepcopy(manifest)
    mutate(changed)
    message = applier.rejected(changed, expected, "immutable")
    assert "is invalid" in message
    after = applier.get(manifest)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def test_immutable_field_change_through_the_python_client_is_rejected(kube: Kube, namespace: str) -> None:
    kube.create_attachment(namespace, "nic", {"serverId": SERVER_ID, "netId": NET_ID})
    with pytest.raises(client.ApiException) as excinfo:
        kube.patch_attachment(namespace, "nic", {"spec": {"netId": OTHER_NET_ID}})
    assert excinfo.value.status == 422
    assert "spec.netId is immutable" in excinfo.value.body


def test_deletion_policy_may_change_both_ways(applier: Applier) -> None:
    before = applier.accepted(attachment(fixedIps=[{"ipAddress": "192.168.1.3"}], cloudRef={"name": "default"}))
    assert before["spec"]["deletionPolicy"] == "Delete"
    orphan = applier.accepted(
        attachment(fixedIps=[{"ipAddress": "192.168.1.3"}], cloudRef={"name": "default"}, deletionPolicy="Orphan")
    )
    assert orphan["spec"]["deletionPolicy"] == "Orphan"
    assert orphan["metadata"]["generation"] == before["metadata"]["generation"] + 1
    back = applier.accepted(
        attachment(fixedIps=[{"ipAddress": "192.168.1.3"}], cloudRef={"name": "default"}, deletionPolicy="Delete")
    )
    assert back["spec"]["deletionPolicy"] == "Delete"
    # An invalid value is still refused on update.
    applier.rejected(attachment(fixedIps=[{"ipAddress": "192.168.1.3"}], cloudRef={"name": "default"},
                                deletionPolicy="Keep"), "spec.deletionPolicy")  # fmt: skip


def test_metadata_changes_are_allowed_on_an_immutable_spec(applier: Applier) -> None:
    """Labels and the pause annotation must stay editable: immutability is about spec only."""
    manifest = attachment(netId=None, portId=PORT_ID)
    applier.accepted(manifest)
    manifest["metadata"]["labels"] = {"team": "a"}
    manifest["metadata"]["annotations"] = {"ecsnic.io/paused": "true"}
    obj = applier.accepted(manifest)
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["metadata"]["annotations"]["ecsnic.io/paused"] == "true"
    result = applier.kube.kubectl(
        "annotate", "ecsnic", "nic", "-n", applier.namespace, "ecsnic.io/paused-", check=False
    )
    assert result.returncode == 0, result.stderr
    # Re-applying the unchanged spec is a no-op, not an immutability error.
    result = applier.apply(manifest)
    assert result.returncode == 0, result.stderr


def test_ecscloud_http_loopback_accepted_and_endpoint_and_project_are_immutable(applier: Applier) -> None:
    obj = applier.accepted(cloud(endpoint="http://127.0.0.1:8774"))
    assert obj["spec"]["endpoint"] == "http://127.0.0.1:8774"
    # A different endpoint or project is a different cloud: its servers are not this cloud's servers, and a
    # finalizer must never be released because a renamed endpoint "lost" them.
    applier.rejected(cloud(endpoint="https://ecs.example.com"), "spec.endpoint is immutable")
    applier.rejected(cloud(endpoint="http://127.0.0.1:8774", projectId="0" * 32), "spec.projectId is immutable")
    # Everything else stays editable.
    edited = applier.accepted(cloud(endpoint="http://127.0.0.1:8774", rateLimit={"qps": 5, "burst": 5}))
    assert edited["spec"]["rateLimit"] == {"qps": 5, "burst": 5}
    assert edited["metadata"]["generation"] == obj["metadata"]["generation"] + 1
    applier.rejected(cloud(endpoint="http://ecs.example.com"), "spec.endpoint", "https://")


def test_ecscloud_ca_bundle_must_be_base64(applier: Applier) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    obj = applier.accepted(cloud(caBundle=base64.b64encode(pem).decode()))
    assert base64.b64decode(obj["spec"]["caBundle"]) == pem
    other = cloud(caBundle="not base64 at all!")
    other["metadata"]["name"] = "cloud-bad-ca"
    applier.rejected(other, "spec.caBundle")
