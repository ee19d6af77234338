"""The servers and processes several test modules start: aiohttp apps and in-process
daemons on loopback, the daemon and the simulator as subprocesses, plain HTTP calls."""

from __future__ import annotations

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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from monitor.daemon import Daemon
from monitor.demo.simulator.rest import DEMO_PASSWORD
from monitor.web.server import build_app
from tests.support.procs import stop_process

ROOT = Path(__file__).resolve().parent.parent.parent
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


def sim_env(sim_url: str, ws_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STAGING", "JWT_", "E2E_"))}
    env.update({"STAGING_URL": sim_url, "STAGING_WS_URL": ws_url,
                "JWT_SECRET_STAGING": SECRET, "E2E_PASSWORD": DEMO_PASSWORD, **extra})
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
                 *extra: str, port: int | None = None,
                 external_url: str | None = None) -> DaemonProc:
    """``synthmon run`` in a child process on ``port`` (a free one by default), ready.
    ``external_url`` is its --external-url."""
    port = free_port() if port is None else port
    if external_url is not None:
        extra = (*extra, "--external-url", external_url)
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


@dataclass
class SimProc:
    proc: subprocess.Popen[bytes]
    url: str
    ws_url: str

    def set_mode(self, mode: str, **delays: float) -> None:
        """Switch the mode; ``delays`` are the switch's own (``slow_delay``,
        ``stream_hold``: seconds)."""
        status, body = http_post(self.url + "/-/simulator/mode",
                                 json.dumps({"mode": mode, **delays}).encode())
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
