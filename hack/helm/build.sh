#!/usr/bin/env bash
# Builds the helm CLI from its published Go module (pinned in go.mod) and caches it outside the checkout,
# keyed by helm and Go version, so a second run costs nothing.
# Prints the path of the helm binary as its last line of stdout (progress goes to stderr).
# Honours ECSNIC_HELM: an existing helm binary to use as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -n "${ECSNIC_HELM:-}" ]]; then
  if [[ -x "$ECSNIC_HELM" ]]; then
    echo "helm: using ECSNIC_HELM=$ECSNIC_HELM" >&2
    echo "$ECSNIC_HELM"
    exit 0
  fi
  echo "helm: ECSNIC_HELM=$ECSNIC_HELM is not an executable" >&2
  exit 1
fi

helm_version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$here/go.mod")"
go_version="$(go env GOVERSION)"
cache="${ECSNIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecs-nic-operator}/helm-${helm_version}_${go_version}"
mkdir -p "$cache"

if [[ -x "$cache/helm" ]]; then
  echo "helm: cached in $cache" >&2
  echo "$cache/helm"
  exit 0
fi

echo "helm: building helm ${helm_version} with ${go_version} (first time only; about a minute on 2 cores)..." >&2
start=$SECONDS
(
  cd "$here"
  # The download step is separate so that a network failure says so, instead of looking like a compile error.
  go mod download -x 2>&1 | awk 'NR % 50 == 1 {print "helm:   downloading modules... (" NR " fetched)"; fflush()}' >&2
  # helm reports its version from these variables (`helm version`), as its own Makefile sets them.
  go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    -o "$cache/helm.tmp" helm.sh/helm/v3/cmd/helm &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    kill -0 "$pid" 2>/dev/null && echo "helm:   still compiling ($((SECONDS - start)) s)" >&2
  done
  wait "$pid"
)
mv "$cache/helm.tmp" "$cache/helm"
echo "helm: built in $((SECONDS - start)) s" >&2
echo "$cache/helm"
