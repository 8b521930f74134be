"""Every Kubernetes call carries a timeout, and the full re-read of attachments pages through the list."""

from __future__ import annotations

from typing import Any

import pytest

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
