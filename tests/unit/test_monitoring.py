"""The chart's Grafana dashboard and Prometheus alerts query only metrics the operator exports (a renamed metric
would otherwise leave an empty panel or an alert that can never fire)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import ecs_nic_operator.metrics  # noqa: F401  (registers the operator's metrics)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ecs-nic-operator"
# Exported by the leader election (i11-ha, operator/ecs_nic_operator/leader.py): 1 on the replica holding the Lease.
ANNOUNCED = {"ecsnic_leader"}


def exported() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("ecsnic_"):
            continue
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        if family.type == "info":
            names.add(family.name + "_info")
    return names


def queried(text: str) -> set[str]:
    return set(re.findall(r"\becsnic_[a-z_]+\b", text))


def test_dashboard_is_valid_json_and_queries_exported_metrics() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
    used = queried("\n".join(exprs))
    assert used - exported() - ANNOUNCED == set()
    assert "ecsnic_attachment_conditions" in used and "ecsnic_cloud_calls_total" in used


def test_alerts_query_exported_metrics_and_outcomes() -> None:
    rules = (CHART / "templates" / "prometheusrule.yaml").read_text()
    assert queried(rules) - exported() - ANNOUNCED == set()
    # The outcome label carries the client's error class names (cloud/errors.py).
    from ecs_nic_operator.cloud import errors

    for outcome in re.findall(r'outcome="([A-Za-z]+)"', rules):
        assert isinstance(getattr(errors, outcome, None), type), outcome
    for name in ("AttachmentsNotReady", "DetachStuck", "CloudThrottled", "CredentialsRejected", "NoLeader"):
        assert f"alert: EcsNic{name}" in rules
