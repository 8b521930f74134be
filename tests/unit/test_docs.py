"""The documentation stays true and self-contained: docs/api.md names every CRD field and every condition
reason the operator can write, the simulator's behaviour keys and control endpoints, and no Markdown file a
user reads links outside the repository or to a file that does not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from ecs_nic_operator.conditions import Reason
from ecs_nic_operator.simulator.seed import DEFAULT_BEHAVIOUR

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api.md"
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").rglob("*.md"))]


def field_paths(schema: dict[str, Any], prefix: str) -> Iterator[str]:
    """Every property under ``schema`` as docs/api.md writes it: ``spec.a.b``, ``[]`` for list items."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        yield path
        yield from field_paths(sub, path)
        if sub.get("type") == "array" and "items" in sub:
            yield from field_paths(sub["items"], f"{path}[]")


def crd_paths() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for crd_file in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(crd_file.read_text())
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]["properties"]
            for top in ("spec", "status"):
                out += [(crd_file.name, p) for p in field_paths(root[top], top)]
    return out


def code_spans(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def reasons() -> list[str]:
    return sorted({v for k, v in vars(Reason).items() if k.isupper() and isinstance(v, str)})


def table_rows(text: str) -> dict[str, str]:
    """First cell (a code span) -> the whole row, for every Markdown table row of docs/api.md."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m:
            rows.setdefault(m.group(1), line)
    return rows


def test_the_field_walk_finds_what_it_should() -> None:
    # Guards the test itself: a walk that returned nothing would pass vacuously.
    paths = {p for _, p in crd_paths()}
    assert {"spec.credentials.secretRef.namespace", "spec.fixedIps[].ipAddress", "status.conditions[].reason"} <= paths
    assert len(paths) >= 40


@pytest.mark.parametrize(("crd", "path"), crd_paths())
def test_every_crd_field_is_documented(crd: str, path: str) -> None:
    rows = table_rows(API.read_text())
    assert path in rows, f"{crd}: {path} is not in a field table of docs/api.md"


def test_no_documented_field_is_missing_from_the_crds() -> None:
    known = {p for _, p in crd_paths()}
    documented = {cell for cell in table_rows(API.read_text()) if re.fullmatch(r"(spec|status)\.[\w.\[\]]+", cell)}
    assert documented - known == set()


@pytest.mark.parametrize("reason", reasons())
def test_every_reason_has_a_row_with_meaning_and_a_recipe(reason: str) -> None:
    text = API.read_text()
    row = table_rows(text).get(reason)
    assert row is not None, f"{reason} has no row in docs/api.md's reason tables"
    assert len([c for c in row.split("|") if c.strip()]) >= 4, row
    recipes = text[text.index("## Reaching every reason with the simulator") :]
    assert re.search(rf"^\s*\d+\. [^\n]*`{reason}`", recipes, re.MULTILINE), f"no simulator recipe for {reason}"


def test_every_simulator_behaviour_key_and_control_endpoint_is_documented() -> None:
    text = API.read_text()
    first_cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    for key in DEFAULT_BEHAVIOUR:
        assert any(f"`{key}`" in cell for cell in first_cells), f"behaviour key {key} is not in docs/api.md"
    server = (ROOT / "operator" / "ecs_nic_operator" / "simulator" / "server.py").read_text()
    routes = re.findall(r"r\.add_(get|put|post|delete)\(CONTROL_PREFIX \+ \"([^\"]+)\"", server)
    assert len(routes) >= 8
    spans = code_spans(text)
    for method, path in routes:
        documented = path.replace("{server_id}", "{sid}" if "ports" in path else "{id}").replace("{port_id}", "{pid}")
        assert f"{method.upper()} /_simulator{documented}" in spans, (method, path)


def links(path: Path) -> Iterator[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    yield from re.findall(r"\]\(([^)\s]+)\)", text)
    yield from re.findall(r"<(https?://[^>]+)>", text)


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_only_inside_the_repository(doc: Path) -> None:
    for target in links(doc):
        parsed = urlparse(target)
        assert not parsed.scheme and not parsed.netloc, f"{doc.name}: link outside the repository: {target}"
        resolved = (doc.parent / parsed.path).resolve() if parsed.path else doc
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"


def test_the_link_check_sees_links() -> None:
    assert list(links(ROOT / "README.md")), "README.md has no link at all: the check would pass vacuously"


def test_one_release_name_everywhere() -> None:
    """Issue 17.2: following README and docs/operations.md must not end in "has no deployed releases"."""
    commands: list[str] = []
    for doc in USER_DOCS:
        commands += re.findall(r"\bhelm (?:install|upgrade|uninstall|status)\s+(\S+)", doc.read_text())
    assert len(commands) >= 3, commands
    assert set(commands) == {"ecs-nic-operator"}, commands
