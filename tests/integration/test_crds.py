"""The CRDs as a user meets them on a real kube-apiserver: installed, documented, with a status subresource,
printer columns, the short name and defaults. No operator runs here; objects just sit in the API server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_nic_operator import GROUP, VERSION
from tests.integration.kube import Kube, condition, wait_for

pytestmark = pytest.mark.integration

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
ATTACHMENT_CRD = "ecsnicattachments.ecsnic.io"
CLOUD_CRD = "ecsclouds.ecsnic.io"
# kubectl resource name used for `kubectl explain` of each CRD.
EXPLAIN_NAME = {ATTACHMENT_CRD: "ecsnicattachments", CLOUD_CRD: "ecsclouds"}

SERVER_ID = "7b7e1f5c-4e4a-4f0e-9a8c-2f1d3c4b5a69"
NET_ID = "3cb9bc59-5699-4588-a4b1-b87f96708bc6"
PORT_ID = "ce531f90-199f-48c0-816c-13e38010b442"
SUBNET_ID = "d9cfef77-2d7f-4c4b-9d3f-7b3f6b8e0a11"
MAC = "fa:16:3e:63:75:b2"


@pytest.fixture(scope="module", autouse=True)
def kinds_discoverable(kube: Kube) -> None:
    """Established is not the end: kubectl finds a new kind only once the API server's discovery lists it."""
    wait_for(
        lambda: kube.kubectl("get", "ecsnic,ecsclouds", "-A", check=False).returncode == 0,
        timeout=30,
        what="ecsnic and ecsclouds in discovery",
    )
    # The OpenAPI document that kubectl explain reads is published a little later still.
    for kind in ("ecsnic", "ecsclouds"):
        wait_for(
            lambda kind=kind: kube.kubectl("explain", kind, check=False).returncode == 0,
            timeout=30,
            what=f"kubectl explain {kind}",
        )


def served_crd(kube: Kube, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kube.kubectl("get", "crd", name, "-o", "json").stdout)
    return result


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    versions = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
    assert len(versions) == 1, f"{crd['metadata']['name']} does not serve {VERSION}"
    schema: dict[str, Any] = versions[0]["schema"]["openAPIV3Schema"]
    return schema


def walk_fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named field of a schema, recursively (through array items), as (dotted path, sub-schema)."""
    node = schema
    while node.get("type") == "array" and "items" in node:
        node = node["items"]
    for name, sub in node.get("properties", {}).items():
        sub_path = f"{path}.{name}" if path else name
        yield sub_path, sub
        yield from walk_fields(sub, sub_path)


def explain_description(output: str) -> str:
    """The DESCRIPTION block of `kubectl explain` output, whitespace-normalised."""
    match = re.search(r"^DESCRIPTION:\s*\n(.*?)(?:^FIELDS:|\Z)", output, re.S | re.M)
    assert match, f"no DESCRIPTION in kubectl explain output:\n{output}"
    return " ".join(match.group(1).split())


def attachment_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcsNicAttachment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"serverId": SERVER_ID, "netId": NET_ID, **spec},
    }


def apply(kube: Kube, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))


def patch_status(kube: Kube, namespace: str, name: str, patch: dict[str, Any]) -> None:
    kube.kubectl(
        "patch",
        "ecsnic",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
    )


FULL_STATUS = {
    "status": {
        "serverId": SERVER_ID,
        "portId": PORT_ID,
        "netId": NET_ID,
        "portState": "ACTIVE",
        "macAddr": MAC,
        "fixedIps": [{"subnetId": SUBNET_ID, "ipAddress": "192.168.1.3"}],
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Attached",
                "message": "the NIC is attached and ACTIVE",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            },
            {
                "type": "Synced",
                "status": "False",
                "reason": "ReconcilePaused",
                "message": "paused",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            },
        ],
    }
}


# --- installation


@pytest.mark.parametrize("crd_name", [ATTACHMENT_CRD, CLOUD_CRD])
def test_crd_is_established_with_accepted_names(kube: Kube, crd_name: str) -> None:
    crd = served_crd(kube, crd_name)
    for type_ in ("Established", "NamesAccepted"):
        cond = condition(crd, type_)
        assert cond is not None and cond["status"] == "True", f"{crd_name} {type_}: {cond}"
    assert crd["spec"]["group"] == GROUP
    # `kubectl apply -f crds/` is idempotent: re-applying the files changes nothing and does not fail.
    out = kube.kubectl("apply", "-f", str(CRD_DIR)).stdout
    assert "unchanged" in out or "configured" in out, out


def test_names_and_scope_match_the_contract(kube: Kube) -> None:
    attachment = served_crd(kube, ATTACHMENT_CRD)
    assert attachment["spec"]["scope"] == "Namespaced"
    assert attachment["status"]["acceptedNames"]["kind"] == "EcsNicAttachment"
    assert attachment["status"]["acceptedNames"]["shortNames"] == ["ecsnic"]
    cloud = served_crd(kube, CLOUD_CRD)
    assert cloud["spec"]["scope"] == "Cluster"
    assert cloud["status"]["acceptedNames"]["kind"] == "EcsCloud"
    resources = kube.kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout
    assert re.search(r"^ecsnicattachments\s+ecsnic\s+ecsnic\.io/v1alpha1\s+true\s+EcsNicAttachment", resources, re.M)
    assert re.search(r"^ecsclouds\s+ecsnic\.io/v1alpha1\s+false\s+EcsCloud", resources, re.M)


# --- documentation


@pytest.mark.parametrize("crd_name", [ATTACHMENT_CRD, CLOUD_CRD])
def test_every_field_has_a_description_in_the_served_schema(kube: Kube, crd_name: str) -> None:
    schema = schema_of(served_crd(kube, crd_name))
    assert schema.get("description", "").strip(), f"{crd_name}: the kind itself has no description"
    fields = list(walk_fields(schema))
    assert len(fields) > 15, fields
    # metadata is the standard ObjectMeta, documented by the API server (kubectl explain checks it below).
    missing = [path for path, sub in fields if path != "metadata" and not sub.get("description", "").strip()]
    assert not missing, f"{crd_name}: fields without a description: {missing}"


@pytest.mark.parametrize("crd_name", [ATTACHMENT_CRD, CLOUD_CRD])
def test_kubectl_explain_describes_every_field(kube: Kube, crd_name: str) -> None:
    """What a user types: `kubectl explain <kind>.<field>` for every field, recursively, says something."""
    schema = schema_of(yaml.safe_load((CRD_DIR / f"{crd_name}.yaml").read_text()))
    resource = EXPLAIN_NAME[crd_name]
    paths = ["", *(path for path, _ in walk_fields(schema))]

    def explain(path: str) -> tuple[str, str]:
        target = f"{resource}.{path}" if path else resource
        return path, explain_description(kube.kubectl("explain", target, f"--api-version={GROUP}/{VERSION}").stdout)

    described = dict([explain(paths[0])])  # warms kubectl's OpenAPI cache before the parallel calls
    with ThreadPoolExecutor(max_workers=4) as pool:
        described.update(pool.map(explain, paths[1:]))
    empty = [path or "<kind>" for path, text in described.items() if not text or text == "<empty>"]
    assert not empty, f"kubectl explain {resource}: no description for {empty}"
    # The text is the CRD's own, not something generic.
    fields = dict(walk_fields(schema))
    for path, sub in fields.items():
        # The API server documents apiVersion and kind itself, in its own (longer) words.
        if "description" in sub and path not in ("apiVersion", "kind"):
            assert described[path] == " ".join(sub["description"].split()), path


def test_kubectl_explain_spot_checks(kube: Kube) -> None:
    out = kube.kubectl("explain", "ecsnic.spec.netId").stdout
    assert "KIND:" in out and "EcsNicAttachment" in out
    assert "FIELD: netId <string>" in out
    assert "Exactly one of netId or portId" in explain_description(out)
    out = kube.kubectl("explain", "ecsnic.spec.fixedIps.ipAddress").stdout
    assert "IPv4 or IPv6 address" in explain_description(out)
    out = kube.kubectl("explain", "ecsnic.status").stdout
    for field in ("portState", "macAddr", "fixedIps", "conditions", "observedGeneration"):
        assert re.search(rf"^\s+{field}\s+<", out, re.M), (field, out)
    out = kube.kubectl("explain", "ecsclouds.spec.credentials.type").stdout
    assert "SDK-HMAC-SHA256" in explain_description(out)
    assert re.search(r"ENUM:\s*\n\s*AKSK\s*\n\s*Token\s*\n\s*Password", out), out
    out = kube.kubectl("explain", "ecsnic.spec.deletionPolicy").stdout
    assert re.search(r"ENUM:\s*\n\s*Delete\s*\n\s*Orphan", out), out
    # A field that does not exist is an error a user sees at once.
    bad = kube.kubectl("explain", "ecsnic.spec.networkId", check=False)
    assert bad.returncode != 0 and "networkId" in bad.stderr


# --- status subresource


@pytest.mark.parametrize("crd_name", [ATTACHMENT_CRD, CLOUD_CRD])
def test_status_subresource_is_enabled(kube: Kube, crd_name: str) -> None:
    versions = served_crd(kube, crd_name)["spec"]["versions"]
    assert versions[0]["subresources"] == {"status": {}}


def test_status_is_written_only_through_the_status_subresource(kube: Kube, namespace: str) -> None:
    apply(kube, attachment_manifest("nic", namespace))
    created = kube.get_attachment(namespace, "nic")
    assert "status" not in created
    generation = created["metadata"]["generation"]

    # A status patch through /status works; the spec smuggled into the same request is ignored.
    patch_status(kube, namespace, "nic", {**FULL_STATUS, "spec": {"deletionPolicy": "Orphan", "netId": PORT_ID}})
    obj = kube.get_attachment(namespace, "nic")
    assert obj["status"] == FULL_STATUS["status"]
    assert obj["spec"]["deletionPolicy"] == "Delete"
    assert obj["spec"]["netId"] == NET_ID
    assert obj["metadata"]["generation"] == generation

    # A status sent to the main endpoint is ignored, while the spec change in it (allowed) is applied and
    # bumps the generation.
    kube.kubectl(
        "patch", "ecsnic", "nic", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"deletionPolicy": "Orphan"}, "status": {"portState": "DOWN"}}),
    )  # fmt: skip
    obj = kube.get_attachment(namespace, "nic")
    assert obj["status"]["portState"] == "ACTIVE"
    assert obj["spec"]["deletionPolicy"] == "Orphan"
    assert obj["metadata"]["generation"] == generation + 1


def test_status_is_validated_too(kube: Kube, namespace: str) -> None:
    apply(kube, attachment_manifest("nic", namespace))
    bad = {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}
    result = kube.kubectl(
        "patch", "ecsnic", "nic", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(bad), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "status.conditions[0].status" in result.stderr and "Maybe" in result.stderr


def test_ecscloud_status_subresource(kube: Kube, namespace: str) -> None:
    name = f"{namespace}-cloud"[:63]
    cloud = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EcsCloud",
        "metadata": {"name": name},
        "spec": {
            "endpoint": "http://127.0.0.1:8774",
            "projectId": "0605767ea3000f0b2f0ac01c2e4ce6bd",
            "credentials": {"type": "Token", "secretRef": {"namespace": namespace, "name": "creds"}},
        },
    }
    apply(kube, cloud)
    try:
        status = {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "SecretNotFound", "message": "no"}],
        }
        kube.kubectl(
            "patch", "ecsclouds", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status, "spec": {"projectId": "other"}}),
        )  # fmt: skip
        obj = json.loads(kube.kubectl("get", "ecsclouds", name, "-o", "json").stdout)
        # The session's operator writes its own verdict over a status that is not its verdict (here the same
        # reason: the Secret does not exist), so only what both agree on is compared; the spec in the status
        # patch must be ignored: that is the subresource.
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
        assert obj["spec"]["projectId"] == "0605767ea3000f0b2f0ac01c2e4ce6bd"
        lines = kube.kubectl("get", "ecsclouds", name).stdout.splitlines()
        assert lines[0].split() == ["NAME", "ENDPOINT", "PROJECT", "AUTH", "READY", "REASON", "AGE"]
        endpoint, project = "http://127.0.0.1:8774", "0605767ea3000f0b2f0ac01c2e4ce6bd"
        assert lines[1].split()[:6] == [name, endpoint, project, "Token", "False", "SecretNotFound"]
    finally:
        kube.kubectl("delete", "ecsclouds", name, "--wait=false", check=False)


# --- printer columns, short name, defaults


def test_printer_columns_and_short_name(kube: Kube, namespace: str) -> None:
    # The session's operator may be running and write conditions of its own (this server is unknown to its
    # cloud); it never writes the port fields for it. So the port columns are compared with what this test
    # wrote, and READY/SYNCED/REASON with whatever the object holds at that moment.
    apply(kube, attachment_manifest("nic", namespace, fixedIps=[{"ipAddress": "192.168.1.3"}]))
    lines = kube.kubectl("get", "ecsnic", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SERVER", "PORT", "STATE", "MAC", "IP", "READY", "SYNCED", "AGE"]
    assert len(lines) == 2 and lines[1].split()[0] == "nic"

    patch_status(kube, namespace, "nic", FULL_STATUS)

    def cond(obj: dict[str, Any], type_: str, key: str) -> str:
        found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_]
        return str(found[0][key]) if found else "<none>"

    for resource in ("ecsnic", "ecsnicattachments", "ecsnicattachment", f"ecsnicattachments.{GROUP}", "ecsnic/nic"):
        args = ["get", resource, "-n", namespace] if "/" in resource else ["get", resource, "nic", "-n", namespace]

        def consistent(args: list[str] = args) -> list[str] | None:
            before = kube.get_attachment(namespace, "nic")
            row = kube.kubectl(*args, "-o", "wide").stdout.splitlines()[1].split()
            after = kube.get_attachment(namespace, "nic")
            if before["metadata"]["resourceVersion"] != after["metadata"]["resourceVersion"]:
                return None  # changed while we looked: look again
            want = [cond(after, "Ready", "status"), cond(after, "Synced", "status"), cond(after, "Ready", "reason")]
            return row if row[6:9] == want else None

        row = wait_for(consistent, timeout=20, what=f"kubectl get {resource} consistent with the object")
        assert row[:6] == ["nic", SERVER_ID, PORT_ID, "ACTIVE", MAC, "192.168.1.3"], resource
        assert re.fullmatch(r"\d+[smhd]", row[9]), row
    assert "nic" in kube.kubectl("get", "ecsnic", "-n", namespace, "-o", "name").stdout


def test_deletion_policy_defaults_to_delete(kube: Kube, namespace: str) -> None:
    apply(kube, attachment_manifest("defaulted", namespace))
    assert kube.get_attachment(namespace, "defaulted")["spec"]["deletionPolicy"] == "Delete"
    out = kube.kubectl("get", "ecsnic", "defaulted", "-n", namespace, "-o", "jsonpath={.spec.deletionPolicy}")
    assert out.stdout == "Delete"
    # Through the Python client as well, and an explicit Orphan is kept.
    kube.create_attachment(
        namespace, "orphaned", {"serverId": SERVER_ID, "portId": PORT_ID, "deletionPolicy": "Orphan"}
    )
    assert kube.get_attachment(namespace, "orphaned")["spec"]["deletionPolicy"] == "Orphan"
    kube.create_attachment(namespace, "python", {"nodeName": "worker-3", "portId": PORT_ID})
    assert kube.get_attachment(namespace, "python")["spec"]["deletionPolicy"] == "Delete"
