"""The real ``synthmon`` command where it is not on the happy path of ``run``: ``synthmon
demo`` from banner to red probe to Ctrl-C, and the ways ``run`` ends early (an invalid
config, a port in use) or is ended (Ctrl-C), each with its exit code and a clear message
instead of a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import stop_process
from tests.support.servers import ROOT, free_port, http_get, http_post

START_TIMEOUT = 30.0


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("STAGING", "JWT_"))}


@contextlib.contextmanager
def synthmon(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``python -m monitor ARGS`` with stdout and stderr to a file; killed if still running."""
    log = tmp_path / f"synthmon-{args[0]}.log"
    with log.open("wb") as out:
        # -X faulthandler: a process that outlives its signal is sent SIGABRT (clean_exit),
        # and its log then says where each thread was.
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "monitor", *args],
                                stdout=out,
                                stderr=subprocess.STDOUT, env=env_without_secrets(), cwd=ROOT)
    try:
        yield proc, log
    finally:
        stop_process(proc, signal.SIGKILL, timeout=5)


def wait_until(check: Callable[[], Any], proc: subprocess.Popen[bytes], log: Path,
               what: str, timeout: float = START_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError, KeyError):
            found = check()
            if found:
                return found
        assert proc.poll() is None, f"exited {proc.returncode} before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:g}s:\n{log.read_text()}"
        time.sleep(0.2)


def results(url: str) -> dict[str, dict[str, Any]]:
    status, body = http_get(url + "/api/v1/results", timeout=5)
    assert status == 200, body
    return {p["probe"]: p for p in json.loads(body)["probes"]}


def last_outcomes(url: str) -> dict[str, str]:
    return {name: p["last"]["outcome"] for name, p in results(url).items() if p.get("last")}


def clean_exit(proc: subprocess.Popen[bytes], log: Path, sig: int) -> int:
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        raise AssertionError(f"still running 10 s after signal {sig}:\n{log.read_text()}") from None
    assert "Traceback" not in log.read_text(), log.read_text()
    return code


def test_demo_banner_first_results_a_regression_and_ctrl_c(tmp_path: Path) -> None:
    daemon_port, sim_port = free_port(), free_port()
    daemon, sim = f"http://127.0.0.1:{daemon_port}", f"http://127.0.0.1:{sim_port}"
    with synthmon(tmp_path, "demo", "--listen", f"127.0.0.1:{daemon_port}",
                  "--simulator", f"127.0.0.1:{sim_port}", "--interval", "1s") as (proc, log):
        wait_until(lambda: "synthmon demo:" in log.read_text(), proc, log, "banner")
        banner = log.read_text()
        for place in (f"{daemon}/", f"{daemon}/metrics", f"{daemon}/api/v1/results",
                      f"{sim}/-/simulator/mode"):
            assert place in banner, banner

        # Every shipped probe has results, and all pass against the healthy simulator (a
        # run over its 1 s budget on a loaded machine is "slow": the next one is waited for).
        shipped = wait_until(lambda: set(results(daemon)), proc, log, "the results API")
        assert {"api-health", "ws-golden-path", "ws-alternate-path"} <= shipped
        wait_until(lambda: (o := last_outcomes(daemon)) and set(o) == shipped
                   and set(o.values()) == {"success"}, proc, log, "every probe green")

        # The incident, switched on as the banner says: the golden path turns red with a 403
        # while the alternate path stays green.
        status, body = http_post(f"{sim}/-/simulator/mode", b'{"mode": "ws_route_missing"}')
        assert status == 200, body
        wait_until(lambda: (o := last_outcomes(daemon))["ws-golden-path"] == "handshake_rejected"
                   and o["ws-alternate-path"] == "success", proc, log,
                   "ws-golden-path red beside a green ws-alternate-path")
        golden = results(daemon)["ws-golden-path"]["last"]
        assert golden["status_code"] == 403, golden

        assert clean_exit(proc, log, signal.SIGINT) == 0  # Ctrl-C


def test_run_with_an_invalid_config_exits_1_naming_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("probes:\n  - name: a\n    http: {url: 'ftp://x/'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
         f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, env=env_without_secrets(), cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{config}:3: probes[0].http.url: must be an http:// or https:// URL" \
        in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_run_on_a_port_in_use_exits_1_saying_so(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
             f"127.0.0.1:{port}", "--log-format", "json"],
            capture_output=True, text=True, timeout=60, env=env_without_secrets(), cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (failed,) = [e for e in events if e["event"] == "listen_failed"]
    assert failed["address"] == f"127.0.0.1:{port}"
    assert "address already in use" in failed["error"].lower(), failed
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path: Path, sig: int) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    port = free_port()
    with synthmon(tmp_path, "run", "-c", str(config), "--listen", f"127.0.0.1:{port}") \
            as (proc, log):
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/-/ready", timeout=1)[0] == 200,
                   proc, log, "ready")
        assert clean_exit(proc, log, sig) == 0


def test_once_interrupted_by_ctrl_c_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C while `once` waits on a target that never answers."""
    with socket.socket() as silent:  # accepts (the backlog does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        config = tmp_path / "probes.yaml"
        config.write_text(
            "probes:\n  - name: hangs\n    timeout: 30s\n    interval: 90s\n"
            f"    http: {{url: 'http://127.0.0.1:{silent.getsockname()[1]}/'}}\n")
        with synthmon(tmp_path, "once", "-c", str(config)) as (proc, log):
            silent.settimeout(START_TIMEOUT)
            connection, _ = silent.accept()  # the probe is in flight
            with connection:
                assert proc.poll() is None, log.read_text()
                assert clean_exit(proc, log, signal.SIGINT) == 130
