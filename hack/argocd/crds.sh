#!/usr/bin/env bash
# Prints the path of Argo CD's Application CRD as Argo CD publishes it in its Go module
# (manifests/crds/application-crd.yaml), fetched through the Go module proxy into the module cache (verified
# against the checksum database) and unpacked once into the ecs-nic-operator cache. The module's go.mod may
# ask for a newer Go than the one here: only the archive is used, nothing is built, so that error is ignored.
# tests/integration/test_gitops.py installs the CRD so deploy/gitops/argocd/application.yaml is validated by
# the real API server against Argo CD's own schema.
set -euo pipefail
version=v3.6.1
module=github.com/argoproj/argo-cd/v3
cache="${ECSNIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecs-nic-operator}/argocd-${version}"
target="$cache/application-crd.yaml"
if [[ -f "$target" ]]; then
  echo "$target"
  exit 0
fi
zip="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "${module}@${version}" 2>/dev/null \
  | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Zip") or "")' || true)"
if [[ -z "$zip" || ! -f "$zip" || ! -f "${zip%.zip}.ziphash" ]]; then
  echo "argocd: could not fetch ${module}@${version} from the Go module proxy" >&2
  exit 1
fi
mkdir -p "$cache"
python3 - "$zip" "${module}@${version}/manifests/crds/application-crd.yaml" "$target.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
mv "$target.tmp" "$target"
echo "$target"
