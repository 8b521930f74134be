#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their published Go modules (pinned in kube/go.mod and etcd/go.mod)
# and caches them outside the checkout, keyed by version, so a second run costs nothing.
# Prints the folder holding both binaries as its last line of stdout (progress goes to stderr).
# Honours KUBEBUILDER_ASSETS: a folder that already holds kube-apiserver and etcd is used as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    echo "control plane: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  echo "control plane: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd" >&2
  exit 1
fi

kube_version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/kube/go.mod")"
etcd_version="$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")"
go_version="$(go env GOVERSION)"
cache="${ECSNIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecs-nic-operator}/controlplane/kube-${kube_version}_etcd-${etcd_version}_${go_version}"
mkdir -p "$cache"

# Two first runs at once (a test run and a demo, or parallel CI jobs) would both compile for minutes and race
# on the same files: the second waits for the first and then finds the binaries cached. flock is util-linux's
# (every Linux); where it is missing (macOS) runs are not serialised.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    echo "control plane: another build into $cache is running; waiting for it..." >&2
    flock 9
  fi
fi

build() {  # name, module dir, package, ldflags
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  if [[ -x "$cache/$name" ]]; then
    echo "control plane: $name cached in $cache" >&2
    return
  fi
  echo "control plane: building $name from $pkg with $go_version (first time only; a few minutes on 2 cores)..." >&2
  local start=$SECONDS
  (
    cd "$here/$dir"
    # The download step is separate so that a network failure says so, instead of looking like a compile error.
    go mod download -x 2>&1 | awk 'NR % 50 == 1 {print "control plane:   downloading modules... (" NR " fetched)"; fflush()}' >&2
    go build -trimpath -ldflags "$ldflags" -o "$cache/$name.tmp" "$pkg" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 15
      kill -0 "$pid" 2>/dev/null && echo "control plane:   still compiling $name ($((SECONDS - start)) s)" >&2
    done
    wait "$pid"
  )
  mv "$cache/$name.tmp" "$cache/$name"
  echo "control plane: built $name in $((SECONDS - start)) s" >&2
}

minor="${kube_version#v1.}"; minor="${minor%%.*}"
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver \
  "-s -w -X k8s.io/component-base/version.gitVersion=${kube_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
echo "$cache"
