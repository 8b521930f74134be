"""The release workflow (.github/workflows/release.yml) as far as it can be checked without GitHub: actionlint
(built from its Go module) finds nothing, and the steps a release relies on are there: multi-arch build with
the Dockerfile's build args, push of image and chart to an OCI registry, cosign signatures, an SBOM."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps(job: str) -> list[dict[str, Any]]:
    s: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return s


def step(job: str, uses: str) -> dict[str, Any]:
    found = [s for s in steps(job) if str(s.get("uses", "")).startswith(uses + "@")]
    assert len(found) == 1, (job, uses)
    return found[0]


def runs(job: str) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


@cache
def actionlint() -> str:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "actionlint" / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    assert proc.returncode == 0, "building actionlint failed; see the output above"
    return proc.stdout.strip().splitlines()[-1]


def test_actionlint_finds_nothing() -> None:
    result = subprocess.run(
        [actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_see_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "release.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1))
    result = subprocess.run([actionlint(), "-no-color", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_runs_on_version_tags_with_least_privilege() -> None:
    wf = workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    assert on["push"]["tags"] == ["v*.*.*"] and "workflow_dispatch" in on
    assert wf["permissions"] == {"contents": "read"}
    assert wf["jobs"]["image"]["permissions"]["packages"] == "write"
    assert wf["jobs"]["image"]["permissions"]["id-token"] == "write"  # keyless cosign
    assert wf["jobs"]["github-release"]["permissions"] == {"contents": "write"}


def test_image_is_multi_arch_with_the_dockerfile_build_args_signed_and_with_an_sbom() -> None:
    wf = workflow()
    assert set(wf["env"]["PLATFORMS"].split(",")) == {"linux/amd64", "linux/arm64"}
    build = step("image", "docker/build-push-action")["with"]
    assert build["platforms"] == "${{ env.PLATFORMS }}" and build["push"] is True and build["sbom"] is True
    args = dict(line.strip().split("=", 1) for line in build["build-args"].strip().splitlines())
    dockerfile_args = set(re.findall(r"^ARG (\w+)=", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert set(args) == dockerfile_args == {"VERSION", "REVISION", "SOURCE"}
    assert args["REVISION"] == "${{ github.sha }}"
    step("image", "docker/setup-qemu-action")  # arm64 on an amd64 runner
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in runs("image")
    sbom = step("image", "anchore/sbom-action")["with"]
    assert sbom["format"] == "spdx-json" and "@${{ steps.build.outputs.digest }}" in sbom["image"]
    assert "cosign attest --yes --type spdxjson" in runs("image")


def test_versions_are_checked_before_anything_is_pushed() -> None:
    wf = workflow()
    assert wf["jobs"]["image"]["needs"] == "versions"
    text = runs("versions")
    for where in ("pyproject.toml", "Chart.yaml", "Dockerfile"):
        assert where in text
    assert "docker buildx imagetools inspect --raw" in text and "linux/arm64" in text


def test_chart_is_linted_pushed_to_oci_and_signed() -> None:
    text = runs("chart")
    assert "helm lint --strict deploy/helm/ecs-nic-operator" in text
    assert 'helm push "dist/ecs-nic-operator-${VERSION}.tgz" "$CHARTS"' in text
    assert workflow()["jobs"]["chart"]["env"]["CHARTS"].startswith("oci://ghcr.io/")
    assert "cosign sign --yes" in text and "artifacthub.io" in text
    helm_version = step("chart", "azure/setup-helm")["with"]["version"]
    go_mod = (ROOT / "hack" / "helm" / "go.mod").read_text()
    assert f"helm.sh/helm/v3 {helm_version}" in go_mod  # the helm the tests use


def test_every_action_is_pinned_to_a_version() -> None:
    for job in workflow()["jobs"].values():
        for s in job["steps"]:
            if "uses" in s:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", s["uses"]), s["uses"]
