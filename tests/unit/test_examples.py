"""deploy/examples/ can be applied after deploy/manifests/ without undoing anything the manifests set."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def docs(folder: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for path in sorted(folder.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d]
    return out


def test_examples_do_not_redeclare_the_operator_namespace_without_its_labels() -> None:
    manifests = {d["metadata"]["name"]: d for d in docs(ROOT / "deploy" / "manifests") if d["kind"] == "Namespace"}  # type: ignore[index]
    assert "ecs-nic-system" in manifests
    for doc in docs(ROOT / "deploy" / "examples"):
        if doc["kind"] != "Namespace":
            continue
        name = doc["metadata"]["name"]  # type: ignore[index]
        if name in manifests:
            # An apply would replace the labels (pod-security.kubernetes.io/enforce among them).
            assert doc["metadata"] == manifests[name]["metadata"], name
