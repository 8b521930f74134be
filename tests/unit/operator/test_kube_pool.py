"""Kubernetes calls: as many connections as threads, so a full pool of threads never waits for a connection
(or opens and drops one per call)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.config import kube_config

from ecs_nic_operator.kube import KUBE_THREADS, Kube, load_config


def test_threads_and_connections_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))  # read at import
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    saved = client.Configuration.get_default_copy()
    try:
        api = load_config()
    finally:
        client.Configuration.set_default(saved)
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == KUBE_THREADS
    kube = Kube(api)
    assert kube.pool._max_workers == KUBE_THREADS
    kube.pool.shutdown()
