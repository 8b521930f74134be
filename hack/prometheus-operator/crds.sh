#!/usr/bin/env bash
# Prints the folder holding the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule, ...) as that
# project publishes them in its Go module (example/prometheus-operator-crd/), fetched through the Go module
# proxy into the module cache (verified against the checksum database) on first use. tests/integration/
# test_helm.py installs two of them so the chart's ServiceMonitor and PrometheusRule are validated by the real
# API server against the real schemas. Honours ECSNIC_PROMETHEUS_OPERATOR_CRDS (a folder to use as it is).
set -euo pipefail
version=v0.85.0
if [[ -n "${ECSNIC_PROMETHEUS_OPERATOR_CRDS:-}" ]]; then
  echo "$ECSNIC_PROMETHEUS_OPERATOR_CRDS"
  exit 0
fi
dir="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus-operator/prometheus-operator@${version}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
echo "$dir/example/prometheus-operator-crd"
