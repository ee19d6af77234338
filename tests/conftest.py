"""Shared fixtures (the probe context, the simulator in process and as a subprocess, the
daemons a test starts) and the hook that runs ``both_loops`` modules on both event loops.
The servers and helpers behind them live in :mod:`tests.support`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from monitor.demo.simulator import RunningSimulator, start_simulator
from monitor.probes.context import ProbeContext, open_context
from monitor.redact import Redactor
from tests.support.servers import SECRET, DaemonProc, SimProc, simulator_process


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """A test module marked ``both_loops`` runs each async test twice, ``[asyncio]`` and
    ``[uvloop]``: the daemon runs on uvloop by default, and the probes lean on loop details
    (the TLS handshake hook, transports' extra info, how a reset surfaces) that the two loops
    implement separately."""
    if item.get_closest_marker("both_loops") is not None:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    """What the daemon hands every probe: a shared session, tokens, a redactor."""
    context = open_context(Redactor())
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator("127.0.0.1", 0, jwt_secret=SECRET)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProc]]:
    """Collects started daemons and makes sure none outlives its test."""
    started: list[DaemonProc] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=5)


@pytest.fixture
def sim_proc(tmp_path: Path) -> Iterator[SimProc]:
    with simulator_process(tmp_path) as sim:
        yield sim
