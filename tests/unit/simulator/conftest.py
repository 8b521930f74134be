"""Fixtures for the simulator tests: a small fast world served on an ephemeral port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from ecs_nic_operator.simulator import Simulator

PROJECT = "0605767ea3000f0b2f0ac01c2e4ce6bd"
TOKEN = "test-token"
AK = "TESTAK0123456789"
SK = "test-secret-key-0123456789"
SERVER_A = "11111111-1111-4111-8111-111111111111"
SERVER_B = "22222222-2222-4222-8222-222222222222"
NET = "33333333-3333-4333-8333-333333333333"
SUBNET = "44444444-4444-4444-8444-444444444444"
NET_SMALL = "55555555-5555-4555-8555-555555555555"
SUBNET_SMALL = "66666666-6666-4666-8666-666666666666"
PORT_FREE = "77777777-7777-4777-8777-777777777777"
PORT_FREE_2 = "88888888-8888-4888-8888-888888888888"
MISSING = "99999999-9999-4999-8999-999999999999"  # no server, network or port has this ID


def make_seed(**behaviour: Any) -> dict[str, Any]:
    return {
        "projectId": PROJECT,
        "credentials": {
            "token": TOKEN,
            "accessKey": AK,
            "secretKey": SK,
            "username": "alice",
            "password": "s3cret",
            "domainName": "acme",
        },
        "servers": [{"id": SERVER_A, "maxNics": 3}, {"id": SERVER_B, "maxNics": 12}],
        "networks": [
            {"id": NET, "subnetId": SUBNET, "cidr": "192.168.0.0/16"},
            {"id": NET_SMALL, "subnetId": SUBNET_SMALL, "cidr": "10.0.0.0/29"},
        ],
        "ports": [{"id": PORT_FREE, "netId": NET}, {"id": PORT_FREE_2, "netId": NET}],
        # Nova's answers unless a test asks for Huawei's (make_seed(dialect="huawei")).
        "behaviour": {"dialect": "nova", "latency": 0, "activeAfter": 0.2, "detachAfter": 0.2, **behaviour},
    }


def iface_url(server: str = SERVER_A, port: str | None = None) -> str:
    base = f"/v2.1/{PROJECT}/servers/{server}/os-interface"
    return base if port is None else f"{base}/{port}"


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


@pytest.fixture
def seed() -> dict[str, Any]:
    return make_seed()


@asynccontextmanager
async def running(seed: dict[str, Any]) -> AsyncIterator[Simulator]:
    """A simulator of this world, served on an ephemeral port until the block ends."""
    s = Simulator(seed)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def sim(seed: dict[str, Any]) -> AsyncIterator[Simulator]:
    async with running(seed) as s:
        yield s


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.url is not None
    async with httpx.AsyncClient(base_url=sim.url, headers={"X-Auth-Token": TOKEN}, timeout=10) as c:
        yield c


@pytest.fixture
async def anon(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.url is not None
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as c:
        yield c
