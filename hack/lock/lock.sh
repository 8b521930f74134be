#!/usr/bin/env bash
# Regenerates the image's locked dependency sets from pyproject.toml, with hashes of every published file
# (all platforms: the image is built for linux/amd64 and linux/arm64):
#   requirements.lock        the operator's runtime dependencies, direct and indirect
#   requirements-build.lock  the build backend (pyproject's [build-system] requires)
# Run it after changing a pin in pyproject.toml; tests/unit/test_image_lock.py fails until the locks agree.
# Uses pip-tools (pinned below) in a throwaway virtualenv; needs PyPI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q pip-tools==7.6.2
cd "$root"
python3 - > "$work/requirements-build.in" <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
PY
compile=("$work/venv/bin/pip-compile" --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links)
# A local wheel cache (PIP_FIND_LINKS) would limit the hashes to the files it holds: PyPI only.
env -u PIP_FIND_LINKS "${compile[@]}" --output-file=requirements.lock pyproject.toml
cp "$work/requirements-build.in" requirements-build.in.tmp
env -u PIP_FIND_LINKS "${compile[@]}" --allow-unsafe --output-file=requirements-build.lock requirements-build.in.tmp
rm requirements-build.in.tmp
sed -i "s|requirements-build.in.tmp|pyproject.toml's [build-system] requires (hack/lock/lock.sh)|" requirements-build.lock
echo "lock: requirements.lock and requirements-build.lock regenerated" >&2
