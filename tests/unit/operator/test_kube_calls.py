"""Every Kubernetes call carries a timeout, and the full re-read of attachments pages through the list."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from ecs_nic_operator.kube import Kube


class FakeCustom:
    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        n = int(kwargs.get("_continue") or 0)
        more = str(n + 1) if n + 1 < self.pages else None
        return {"items": [{"n": n}], "metadata": {"continue": more, "resourceVersion": "42"}}


async def test_the_list_pages_and_every_call_has_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCustom(pages=3)
    monkeypatch.setattr(Kube, "custom", property(lambda self: fake))
    kube = Kube(api=None)  # type: ignore[arg-type]
    items, version = await kube.list_attachments(())
    assert [i["n"] for i in items] == [0, 1, 2] and version == "42"
    assert all(c["limit"] == kube.page_size and c["_request_timeout"] == kube.timeout for c in fake.calls)
    assert [c.get("_continue") for c in fake.calls] == [None, "1", "2"]


class SilentPath:
    """A list call whose connection went silent; and the pool manager that would hand out the next one."""

    def __init__(self) -> None:
        self.cleared = 0
        self.pool_manager = self

    def clear(self) -> None:
        self.cleared += 1

    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise urllib3.exceptions.ReadTimeoutError(None, "/apis", "Read timed out.")  # type: ignore[arg-type]


async def test_a_call_that_times_out_drops_every_pooled_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SilentPath()
    monkeypatch.setattr(Kube, "custom", property(lambda self: fake))
    api = type("Api", (), {"rest_client": fake})()
    kube = Kube(api=api)  # type: ignore[arg-type]
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        await kube.list_attachments(())
    assert fake.cleared == 1


def test_the_operators_client_never_retries_a_read_on_the_next_pooled_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from ecs_nic_operator import kube as kube_module

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    load = kube_module.config.load_kube_config
    monkeypatch.setattr(kube_module.config, "load_kube_config", lambda: load(config_file=str(kubeconfig)))
    api = kube_module.load_config()
    retries = api.rest_client.pool_manager.connection_pool_kw["retries"]
    assert retries.read == 0 and retries.connect == 3
