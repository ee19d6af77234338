"""The simulator in process and a bounded HTTP client, for the simulator's test modules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.demo.simulator import RunningSimulator, start_simulator
from tests.support.simulator import HTTP_TIMEOUT, SECRET


@pytest.fixture
async def running() -> AsyncIterator[RunningSimulator]:
    r = await start_simulator(jwt_secret=SECRET)
    try:
        yield r
    finally:
        await asyncio.wait_for(r.stop(), 5)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        yield session
