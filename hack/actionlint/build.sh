#!/usr/bin/env bash
# Builds actionlint (GitHub Actions workflow linter) from its Go module and caches it outside the checkout,
# keyed by version and Go version. Prints the binary's path as its last line of stdout.
set -euo pipefail
version=v1.7.12
go_version="$(go env GOVERSION)"
cache="${ECSNIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecs-nic-operator}/actionlint-${version}_${go_version}"
if [[ -x "$cache/actionlint" ]]; then
  echo "$cache/actionlint"
  exit 0
fi
echo "actionlint: building ${version} with ${go_version} (first time only)..." >&2
mkdir -p "$cache"
(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod GOBIN="$cache" go install "github.com/rhysd/actionlint/cmd/actionlint@${version}") >&2
echo "$cache/actionlint"
