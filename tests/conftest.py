"""Shared fixtures (the probe context, the simulator in process and as a subprocess, the
daemons a test starts) and the hook that runs ``both_loops`` modules on both event loops.
The servers and helpers behind them live in :mod:`tests.support`."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from monitor import eventloop
from monitor.demo.simulator import RunningSimulator, start_simulator
from monitor.probes.context import ProbeContext, open_context
from monitor.redact import Redactor
from tests.support import netguard, schedule
from tests.support.servers import SECRET, DaemonProc, SimProc, simulator_process


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """A test module marked ``both_loops`` runs each async test twice, ``[asyncio]`` and
    ``[uvloop]``: the daemon runs on uvloop by default, and the probes lean on loop details
    (the TLS handshake hook, transports' extra info, how a reset surfaces) that the two loops
    implement separately."""
    if item.get_closest_marker("both_loops") is not None:
        uvloop = eventloop.loop_factory("uvloop")  # the daemon's, with its hook
        assert uvloop is not None
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop}
    return {"asyncio": asyncio.new_event_loop}

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long files first, for the workers of `make test` (tests/support/schedule.py)."""
    items[:] = schedule.longest_first(items)

# --------------------------------------------------------------------------- egress guard

_NETNS: dict[str, str | None] = {"problem": "not entered"}


def pytest_configure(config: pytest.Config) -> None:
    """Enter a loopback-only network namespace before anything starts a thread (see
    tests/support/netguard.py); under CI a session that cannot is refused."""
    problem = netguard.enter_loopback_only_namespace()
    _NETNS["problem"] = problem
    if problem and os.environ.get("CI") and os.environ.get("SYNTHMON_TEST_NETNS") != "0":
        raise pytest.UsageError(
            f"egress guard: cannot enter a loopback-only network namespace ({problem}); "
            "CI must check that no test leaves loopback (run as root)")


def pytest_report_header(config: pytest.Config) -> str:
    problem = _NETNS["problem"]
    if problem is None:
        return "egress guard: loopback-only network namespace (a test that tries any other " \
               "address fails)"
    return f"egress guard: OFF ({problem})"


_ATTRIBUTED = [0]  # attempts already failed by a test's own check, or excused
_EXCUSED = [0]  # attempts of a tool the test drives (not the product), see excuse_egress


@contextlib.contextmanager
def excuse_egress(at_most: int, what: str) -> Iterator[None]:
    """Attempts made while this block runs are a test tool's own (Chromium's IPv6
    reachability probe, a UDP connect that sends nothing), up to ``at_most``; more fail."""
    if _NETNS["problem"] is not None:
        yield
        return
    before = netguard.no_route_attempts()
    yield
    tried = netguard.no_route_attempts() - before
    assert tried <= at_most, (
        f"{what} tried {tried} time(s) to leave loopback (at most {at_most} expected)")
    _EXCUSED[0] += tried


def _check_egress(before: int, what: str, allowed: int = 0) -> None:
    tried = netguard.no_route_attempts() - before
    if what != "this test":
        tried -= _ATTRIBUTED[0]
    else:
        excused, _EXCUSED[0] = _EXCUSED[0], 0
        _ATTRIBUTED[0] += tried
        tried -= excused
        if tried == allowed:
            return
    if tried:
        pytest.fail(f"{what} tried {tried} time(s) to reach an address other than loopback "
                    "(a connect, a send or a DNS query; this network namespace has no route "
                    "but lo, and counts the attempts)", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _no_egress_in_session_fixtures() -> Iterator[None]:
    """Module and session fixtures (servers, the hostile zoo) between the tests' checks."""
    if _NETNS["problem"] is not None:
        yield
        return
    before = netguard.no_route_attempts()
    yield
    _check_egress(before, "the session (a fixture or a process outliving its test)")


@pytest.fixture(autouse=True)
def _no_egress(request: pytest.FixtureRequest) -> Iterator[None]:
    """``@pytest.mark.egress_attempts(n)``: a test of the guard itself tries exactly n times."""
    if _NETNS["problem"] is not None:
        yield
        return
    marker = request.node.get_closest_marker("egress_attempts")
    before = netguard.no_route_attempts()
    yield
    _check_egress(before, "this test", allowed=marker.args[0] if marker else 0)



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


@pytest.fixture(scope="module")
def module_sim_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProc]:
    with simulator_process(tmp_path_factory.mktemp("sim")) as sim:
        yield sim


@pytest.fixture
def shared_sim_proc(module_sim_proc: SimProc) -> SimProc:
    """One simulator process for the module, as a fresh one starts at each test: healthy,
    the mode's delays at their defaults (a switch without them resets them). For modules
    whose tests only switch its mode and run probes against it: a process start less a
    test."""
    assert module_sim_proc.proc.poll() is None, "the module's simulator has exited"
    module_sim_proc.set_mode("healthy")
    return module_sim_proc
