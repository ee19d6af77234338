"""Shared fixtures: the staging simulator on loopback and a daemon in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import uvloop
from aiohttp import web

from monitor.auth import TokenSource
from monitor.daemon import Daemon
from monitor.probes.context import ProbeContext, new_session
from monitor.redact import Redactor
from monitor.server import build_app
from monitor.simulator import RunningSimulator, start_simulator
from tests import netguard
from tests.procs import stop_process


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """A test module marked ``both_loops`` runs each async test twice, ``[asyncio]`` and
    ``[uvloop]``: the daemon runs on uvloop by default, and the probes lean on loop details
    (the TLS handshake hook, transports' extra info, how a reset surfaces) that the two loops
    implement separately."""
    if item.get_closest_marker("both_loops") is not None:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}

# --------------------------------------------------------------------------- egress guard

_NETNS: dict[str, str | None] = {"problem": "not entered"}


def pytest_configure(config: pytest.Config) -> None:
    """Enter a loopback-only network namespace before anything starts a thread (see
    tests/netguard.py); under CI a session that cannot is refused."""
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


ROOT = Path(__file__).resolve().parent.parent
SECRET = "sim-secret-Zq7v9WkPp2-0123456789abcdef"  # a value the secret-leak tests grep for


@contextlib.asynccontextmanager
async def serving(app: web.Application, tls: ssl.SSLContext | None = None
                  ) -> AsyncIterator[str]:
    """``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:PORT``)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serving_daemon(daemon: Daemon) -> AsyncIterator[str]:
    """``daemon`` started in this process, its endpoints served; yields their base URL."""
    await daemon.start()
    try:
        async with serving(build_app(daemon)) as base:
            yield base
    finally:
        await daemon.stop()


def need_tool(name: str, install: str) -> str:
    """Path of the external program ``name`` (this venv's bin first, then PATH). Missing,
    it fails the test under CI (``CI`` set, as CI runs .ci/run), where a skip would let a
    check quietly drop out, and skips it elsewhere; ``install`` says how to get it."""
    local = Path(sys.executable).parent / name
    found = str(local) if os.access(local, os.X_OK) else shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed ({install}); CI must run this check",
                    pytrace=False)
    pytest.skip(f"{name} is not installed ({install})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    """What the daemon hands every probe: a shared session, tokens, a redactor."""
    redactor = Redactor()
    session = new_session()
    try:
        yield ProbeContext(session=session, tokens=TokenSource(redactor), redactor=redactor)
    finally:
        await session.close()


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator("127.0.0.1", 0, jwt_secret=SECRET)
    try:
        yield running
    finally:
        await running.stop()


def sim_env(sim_url: str, ws_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGING", "JWT_"))}
    env.update({"STAGING_URL": sim_url, "STAGING_WS_URL": ws_url,
                "JWT_SECRET_STAGING": SECRET, **extra})
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_post(url: str, data: bytes = b"", timeout: float = 10.0) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class DaemonProc:
    proc: subprocess.Popen[str]
    url: str
    log_path: Path
    _closed: bool = field(default=False)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def event_time(self, event: str) -> float:
        """Wall-clock time (time.time()) of the last JSON log line with this ``event``."""
        found = [json.loads(line) for line in self.logs().splitlines()
                 if line.startswith("{") and f'"event": "{event}"' in line]
        assert found, f"no {event!r} in the log:\n{self.logs()[-3000:]}"
        return datetime.fromisoformat(found[-1]["timestamp"]).timestamp()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal and wait; a daemon that does not stop in time fails the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, signal.SIGKILL)
            raise


def start_daemon(config: Path, env: dict[str, str], tmp_path: Path,
                 *extra: str) -> DaemonProc:
    port = free_port()
    log_path = tmp_path / f"daemon-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config),
         "--listen", f"127.0.0.1:{port}", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early:\n{log_path.read_text()}")
        with contextlib.suppress(OSError):
            if http_get(url + "/-/ready", timeout=1)[0] == 200:
                return DaemonProc(proc, url, log_path)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"daemon not ready within 20 s:\n{log_path.read_text()}")


@pytest.fixture
def daemons() -> Iterator[list[DaemonProc]]:
    """Collects started daemons and makes sure none outlives its test."""
    started: list[DaemonProc] = []
    yield started
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=5)


@dataclass
class SimProc:
    proc: subprocess.Popen[bytes]
    url: str
    ws_url: str

    def set_mode(self, mode: str) -> None:
        status, body = http_post(self.url + "/-/simulator/mode",
                                 f'{{"mode": "{mode}"}}'.encode())
        assert status == 200, body

    def env(self, **extra: str) -> dict[str, str]:
        return sim_env(self.url, self.ws_url, **extra)


@contextlib.contextmanager
def simulator_process(workdir: Path) -> Iterator[SimProc]:
    """The simulator in its own process, for tests whose own thread blocks."""
    port = free_port()
    log_path = workdir / "sim.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "simulator", "--listen", f"127.0.0.1:{port}"],
            env=sim_env("", ""), stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        try:
            while True:
                with contextlib.suppress(OSError):
                    if http_get(url + "/health", timeout=1)[0] == 200:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("simulator did not start: " + log_path.read_text())
                time.sleep(0.05)
            yield SimProc(proc, url, f"ws://127.0.0.1:{port}")
        finally:
            stop_process(proc, timeout=5)


@pytest.fixture
def sim_proc(tmp_path: Path) -> Iterator[SimProc]:
    with simulator_process(tmp_path) as sim:
        yield sim
