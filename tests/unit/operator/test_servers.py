"""ServerViews: one list call per server shared by everyone who needs a look, and never an answer older than asked."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ecs_nic_operator.cloud.client import EcsClient
from ecs_nic_operator.cloud.models import InterfaceAttachment
from ecs_nic_operator.servers import ServerViews

KEY = ("default", "server-1")


def port(port_id: str, state: str = "ACTIVE") -> InterfaceAttachment:
    return InterfaceAttachment(port_id, "net", "fa:16:3e:00:00:01", state, ())


class FakeClient:
    """Answers list calls after a gate opens, with whatever the test put on the server by then."""

    def __init__(self) -> None:
        self.ports: list[InterfaceAttachment] = []
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def list(self, server_id: str) -> list[InterfaceAttachment]:
        self.calls += 1
        snapshot = list(self.ports)  # what the cloud had when the call was sent
        await self.gate.wait()
        return snapshot


def views_and_client() -> tuple[ServerViews, FakeClient, Any]:
    fake = FakeClient()
    return ServerViews(), fake, cast(EcsClient, fake)


async def test_concurrent_looks_share_one_call() -> None:
    views, fake, client = views_and_client()
    fake.ports = [port("a")]
    fake.gate.clear()
    looks = [asyncio.create_task(views.ports(client, KEY, 5.0)) for _ in range(10)]
    await asyncio.sleep(0)
    fake.gate.set()
    answers = await asyncio.gather(*looks)
    assert fake.calls == 1
    assert all(set(a) == {"a"} for a in answers)


async def test_max_age_zero_never_reuses_a_call_sent_before_the_caller_started() -> None:
    views, fake, client = views_and_client()
    fake.gate.clear()
    early = asyncio.create_task(views.ports(client, KEY, 0))
    await asyncio.sleep(0)
    fake.ports = [port("b")]  # appears after the early call was sent
    late = asyncio.create_task(views.ports(client, KEY, 0))
    await asyncio.sleep(0)
    fake.gate.set()
    assert set(await early) == set()
    assert set(await late) == {"b"}
    assert fake.calls == 2


async def test_our_own_attach_survives_a_list_sent_before_it() -> None:
    views, fake, client = views_and_client()
    fake.gate.clear()
    before = asyncio.create_task(views.ports(client, KEY, 5.0))
    await asyncio.sleep(0)
    views.note(KEY, port("new", "DOWN"))  # the attach answered while that list was in flight
    fake.gate.set()
    assert "new" in await before
    assert "new" in await views.ports(client, KEY, 5.0)
    assert fake.calls == 1


async def test_cached_only_answers_from_a_recent_real_list() -> None:
    views, fake, client = views_and_client()
    assert views.cached(KEY, 60.0) == {}
    views.note(KEY, port("mine", "DOWN"))
    assert views.cached(KEY, 60.0) == {}  # a note alone is not a listing
    fake.ports = [port("mine", "ACTIVE")]
    await views.ports(client, KEY, 0)
    assert views.cached(KEY, 60.0)["mine"].port_state == "ACTIVE"
    assert views.cached(KEY, 0.0) == {}
    assert fake.calls == 1
