"""The benchmark's small version, so it cannot rot. Figures are printed, not asserted: only invariants are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ecs_nic_operator.devenv.controlplane import repo_root

KEYS = {
    "ready_all_s", "bound_s", "ratio", "k8s_writes_per_attach", "cloud_calls_per_attach", "single_ready_s",
    "rss_mb_10k", "idle_cpu_s_per_min_10k", "resync_calls_per_period_10k", "restart_resume_s", "restart_posts",
    "peak_qps", "qps_ceiling", "delete_all_s", "machine", "bound_terms_s", "latency_sweep",
}  # fmt: skip


def test_bench_smoke_writes_table_json_and_plot(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(repo_root() / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert set(data) >= KEYS, KEYS - set(data)
    assert (tmp_path / "smoke-ready.png").stat().st_size > 10_000
    assert "cloud calls / attachment" in result.stdout
    # Invariants, not timings: every attachment got exactly one NIC, and a restart attaches nothing.
    assert data["nics_after_run1"] == data["n"]
    assert data["restart_posts"] == 0
    # The leader killed half-way through run 1: another replica took over, nothing duplicated or lost.
    assert data["failover_duplicates"] == 0 and data["failover_missing"] == 0
    assert data["failover_takeover_s"] > 0 and data["failover_first_ready_s"] >= data["failover_takeover_s"]
    assert set(data["machine"]) >= {"cores", "python", "kopf", "kube_apiserver"}
    # The latency sweep (smoke: run 1's own 0.1 s and 0.5 s): each point with its ratio and delete-all time,
    # every attachment Ready and deleted (the run raises otherwise), and plotted.
    assert set(data["latency_sweep"]) == {"0.1", "0.5"}
    for point in data["latency_sweep"].values():
        assert {"ratio", "delete_all_s", "bound_s", "bound_terms_s", "peak_qps"} <= set(point)
        assert point["bound_s"] == max(point["bound_terms_s"].values())
    assert (tmp_path / "smoke-sweep.png").stat().st_size > 10_000
    assert "max(2N/Q, act + L, chain x L)" in result.stdout
