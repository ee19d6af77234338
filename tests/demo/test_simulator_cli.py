"""`synthmon simulator` says where it listens and in which mode; its mode endpoint takes
JSON, a form or ?mode=, and answers a missing or unknown mode with a 400 listing the modes."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.demo.modes import MODES
from tests.support.procs import stop_process
from tests.support.servers import ROOT, SECRET, http_post


def _first_lines(proc: subprocess.Popen[str], count: int, timeout: float = 20) -> list[str]:
    """The first ``count`` lines of stdout, waiting at most ``timeout`` (a thread reads: a
    select() on the pipe would miss lines already in the file object's buffer)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            out.append(lines.get(timeout=0.5).rstrip("\n"))
    return out


@pytest.fixture
def simulator() -> Iterator[tuple[str, list[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulator", "--listen", "127.0.0.1:0",
         "--mode", "close_1008"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "JWT_SECRET_STAGING": SECRET})
    try:
        lines = _first_lines(proc, 2)
        assert len(lines) == 2, lines
        m = re.match(r"staging simulator listening on (http://127\.0\.0\.1:\d+) \(WebSocket "
                     r"ws://127\.0\.0\.1:\d+\), mode close_1008$", lines[0])
        assert m, lines
        yield m.group(1), lines
    finally:
        stop_process(proc, timeout=5)


def _post(url: str, body: bytes = b"",
          content_type: str | None = None) -> tuple[int, dict[str, Any]]:
    if content_type is None:
        status, text = http_post(url, body)
    else:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
    return status, json.loads(text)


def _mode(url: str) -> str:
    with urllib.request.urlopen(url + "/-/simulator/mode", timeout=10) as resp:
        return str(json.loads(resp.read())["mode"])


def test_start_message_and_every_way_to_switch(simulator: tuple[str, list[str]]) -> None:
    url, lines = simulator
    endpoint = url + "/-/simulator/mode"
    assert lines[1].startswith(f"switch the mode: curl -d mode=NAME {endpoint}")
    assert all(m in lines[1] for m in MODES)
    assert _mode(url) == "close_1008"
    for body, ctype, mode in [
        (b'{"mode": "slow", "slow_delay": 0.05}', "application/json", "slow"),
        (b"mode=upgrade_json", "application/x-www-form-urlencoded", "upgrade_json"),
        # curl -d '{"mode": ...}' labels JSON as a form
        (b'{"mode": "close_1011"}', "application/x-www-form-urlencoded", "close_1011"),
        (b"mode=slow&slow_delay=0.01", None, "slow"),
    ]:
        status, answer = _post(endpoint, body, ctype)
        assert status == 200 and answer["mode"] == mode, (body, answer)
        assert _mode(url) == mode
    assert answer["slow_delay"] == pytest.approx(0.01)  # the form's slow_delay
    # ... for that switch only: the next mode has the start's delay again.
    status, answer = _post(endpoint + "?mode=healthy")
    assert status == 200 and _mode(url) == "healthy"
    assert answer["slow_delay"] == pytest.approx(0.3)


@pytest.mark.parametrize(("suffix", "body", "ctype", "said"), [
    ("", b"", None, "no mode given"),
    ("", b"", "application/x-www-form-urlencoded", "no mode given"),
    ("", b"mode=", "application/x-www-form-urlencoded", "no mode given"),
    ("", b"{}", "application/json", "no mode given"),
    ("", b'{"mode": "sideways"}', "application/json", "unknown mode 'sideways'"),
    ("?mode=sideways", b"", None, "unknown mode 'sideways'"),
    ("", b'{"mode": 7}', "application/json", "unknown mode '7'"),
    ("", b'["slow"]', "application/json", "must be an object"),
    ("", b'{"mode": ', "application/json", "not valid JSON"),
    ("", b"mode=slow&slow_delay=soon", None, "slow_delay must be a non-negative number"),
    ("", b'{"mode": "slow", "slow_delay": -1}', "application/json", "slow_delay must be"),
])
def test_bad_switches_list_the_modes(simulator: tuple[str, list[str]], suffix: str,
                                     body: bytes, ctype: str | None, said: str) -> None:
    url, _ = simulator
    status, answer = _post(url + "/-/simulator/mode" + suffix, body, ctype)
    assert status == 400
    assert said in answer["error"] and "None" not in answer["error"]
    assert answer["error"].endswith("modes: " + ", ".join(MODES))
    assert answer["modes"] == list(MODES)
    assert _mode(url) == "close_1008"  # unchanged
