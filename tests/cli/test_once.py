"""`synthmon once --format json` against the simulator in each of its regressions.

Each PRODUCT.md outcome that the simulator can produce is checked here through the CLI a
deploy gate would use; the rest (resets, garbage, TLS, ...) are in the probe tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ROOT, SECRET, SimProc, http_post

# The budgets (max_latency) are SLACK: a healthy answer stays within them on a loaded
# machine; the simulator's slow mode delays every answer and event by SLOW_DELAY, more.
SLOW_DELAY = 0.6
PROBES = """\
defaults: {interval: 60s, timeout: 8s, retries: 0}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: once-user}, ttl: 5m}
probes:
  - name: golden
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      expect_subprotocol: jwt-auth
      max_latency: 500ms
      steps:
        - {name: welcome, expect: {json: {type: connect}, timeout: 2s}}
        - {name: ask, send: {json: {type: user_message, payload: {content: hi}}}}
        - name: events
          expect_events:
            types: [agent_started, agent_thinking, tool_executing, tool_completed,
                    agent_completed]
            timeout: 5s
            fail_on: [error_message, agent_failed]
  - name: unordered
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      steps:
        - {send: {json: {type: user_message}}}
        - expect_events: {types: [agent_started, tool_executing], in_order: false,
                          timeout: 1s}
  - name: alternate
    websocket:
      url: ${STAGING_WS_URL}/ws
      auth: jwt
      steps: [{expect: {json: {type: connect}, timeout: 2s}}]
  - name: token-subprotocol-only
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [subprotocol]
  - name: negative
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: {type: jwt, secret: wrong-secret-wrong-secret-wrong-secret, claims: {sub: x}}
      expect_rejected: true
  - name: health
    http:
      url: ${STAGING_URL}/api/health
      expect: {status: [200], json: {checks.postgres.status: connected}, max_latency: 500ms}
  - name: threads
    http: {url: "${STAGING_URL}/api/threads", auth: jwt, expect: {status: 200}}
"""


@pytest.fixture
def sim_proc(shared_sim_proc: SimProc) -> SimProc:
    """The module's one simulator (tests/conftest.py): a test here only switches its mode
    and runs `once` against it, so a process of its own would change nothing but the time."""
    return shared_sim_proc


def once(sim: SimProc, tmp_path: Path, text: str = PROBES, extra_env: dict[str, str] | None
         = None, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    env = sim.env(**(extra_env or {}))
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                           "--format", "json", *args],
                          capture_output=True, text=True, env=env, timeout=30, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    for item in data:
        for key in ("probe", "type", "outcome", "success", "duration_seconds", "status_code",
                    "close_code", "evidence"):
            assert key in item
    return proc.returncode, {r["probe"]: r for r in data}, proc.stdout + proc.stderr


def outcomes(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: r["outcome"] for name, r in results.items()}


def test_healthy_all_succeed_exit_0(sim_proc: SimProc, tmp_path: Path) -> None:
    code, res, out = once(sim_proc, tmp_path)
    assert outcomes(res) == dict.fromkeys(res, "success"), out
    assert code == 0
    assert res["golden"]["status_code"] == 101
    assert [s["name"] for s in res["golden"]["steps"]] == ["welcome", "ask", "events"]
    assert SECRET not in out and "eyJ" not in out


@pytest.mark.parametrize(("mode", "expected"), [
    ("ws_route_missing", {"golden": "handshake_rejected", "alternate": "success",
                          "negative": "success", "health": "success"}),
    ("upgrade_json", {"golden": "not_upgraded", "alternate": "success"}),
    ("auth_rejected_before_accept", {"golden": "handshake_rejected",
                                     "alternate": "handshake_rejected", "negative": "success"}),
    ("close_1008", {"golden": "auth_rejected", "negative": "success"}),
    ("close_1011", {"golden": "closed_by_server", "alternate": "closed_by_server"}),
    ("strict_subprotocol", {"golden": "success", "token-subprotocol-only":
                            "subprotocol_mismatch"}),
    ("events_missing", {"golden": "unexpected_message", "unordered": "message_timeout"}),
    ("auth_not_enforced", {"golden": "success", "negative": "auth_not_enforced"}),
    ("slow", {"golden": "slow", "health": "slow", "threads": "success"}),
])
def test_each_regression_has_its_outcome(sim_proc: SimProc, tmp_path: Path, mode: str,
                                         expected: dict[str, str]) -> None:
    if mode == "slow":
        status, body = http_post(sim_proc.url + "/-/simulator/mode",
                                 f'{{"mode": "slow", "slow_delay": {SLOW_DELAY}}}'.encode())
        assert status == 200, body
    else:
        sim_proc.set_mode(mode)
    code, res, out = once(sim_proc, tmp_path)
    got = outcomes(res)
    assert {k: got[k] for k in expected} == expected, out
    assert code == 1
    assert SECRET not in out and "eyJ" not in out


def test_evidence_of_the_incident(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("upgrade_json")
    _, res, _ = once(sim_proc, tmp_path, PROBES, None, "--probe", "golden")
    golden = res["golden"]
    assert list(res) == ["golden"]
    assert golden["status_code"] == 200
    assert golden["evidence"]["content_type"].startswith("application/json")
    assert "websocket_ssot" in golden["evidence"]["body_excerpt"]
    assert golden["evidence"]["diagnosis"]["status_code"] == 200

    sim_proc.set_mode("close_1008")
    _, res, _ = once(sim_proc, tmp_path, PROBES, None, "--probe", "golden")
    golden = res["golden"]
    assert golden["close_code"] == 1008 and golden["outcome"] == "auth_rejected"
    assert golden["upgraded"] is True


def test_missing_secret_is_config_error_and_others_still_run(sim_proc: SimProc,
                                                             tmp_path: Path) -> None:
    code, res, _out = once(sim_proc, tmp_path, PROBES, {"JWT_SECRET_STAGING": ""})
    assert res["golden"]["outcome"] == "config_error"
    assert "JWT_SECRET_STAGING" in res["golden"]["evidence"]["detail"]
    assert res["health"]["outcome"] == "success"
    assert code == 1


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, its backlog filled: further SYNs go unanswered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fillers.append(c)
    yield port
    for c in fillers:
        c.close()
    server.close()


def test_network_outcomes(sim_proc: SimProc, tmp_path: Path, full_backlog: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    text = f"""\
defaults: {{interval: 60s, timeout: 1s, retries: 0}}
probes:
  - name: refused-http
    http: {{url: "http://127.0.0.1:{closed_port}/"}}
  - name: refused-ws
    websocket: {{url: "ws://127.0.0.1:{closed_port}/"}}
  - name: dns-http
    http: {{url: "http://no-such-host.invalid/"}}
  - name: dns-ws
    websocket: {{url: "ws://no-such-host.invalid/"}}
  - name: connect-timeout-ws
    websocket: {{url: "ws://127.0.0.1:{full_backlog}/"}}
  - name: unexpected-status
    http: {{url: "${{STAGING_URL}}/api/threads"}}
  - name: assertion
    http: {{url: "${{STAGING_URL}}/api/health", expect: {{json: {{status: sick}}}}}}
"""
    code, res, out = once(sim_proc, tmp_path, text)
    assert outcomes(res) == {
        "refused-http": "connect_refused", "refused-ws": "connect_refused",
        "dns-http": "dns_error", "dns-ws": "dns_error",
        "connect-timeout-ws": "connect_timeout",
        "unexpected-status": "unexpected_status", "assertion": "assertion_failed",
    }, out
    assert all(r["duration_seconds"] < 1.6 for r in res.values())
    assert code == 1


def test_table_output_is_plain_when_piped(sim_proc: SimProc, tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path)],
                          capture_output=True, text=True, env=sim_proc.env(), timeout=30,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b[" not in proc.stdout
    assert "golden" in proc.stdout and "success" in proc.stdout
    assert "7 passed, 0 failed" in proc.stdout


RETRIED = """\
defaults: {interval: 60s, timeout: 3s, retries: 2, retry_delay: 200ms}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: once-user}, ttl: 5m}
probes:
  - name: golden
    websocket: {url: "${STAGING_WS_URL}/api/v1/websocket", auth: jwt}
  - name: health
    http: {url: "${STAGING_URL}/health"}
"""


def test_once_retries_a_failure_as_the_daemon_does_and_retries_0_turns_it_off(
        sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("ws_route_missing")
    code, res, out = once(sim_proc, tmp_path, RETRIED)
    assert code == 1, out
    assert (res["golden"]["outcome"], res["golden"]["attempt"]) == ("handshake_rejected", 3)
    assert res["golden"]["final"] is True
    assert (res["health"]["success"], res["health"]["attempt"]) == (True, 1)
    code, res, out = once(sim_proc, tmp_path, RETRIED, None, "--retries", "0")
    assert code == 1, out
    assert (res["golden"]["outcome"], res["golden"]["attempt"]) == ("handshake_rejected", 1)
    code, res, out = once(sim_proc, tmp_path, RETRIED, None, "--retries", "1")
    assert res["golden"]["attempt"] == 2, out


def test_once_retries_must_be_0_to_5(sim_proc: SimProc, tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(RETRIED)
    for bad in ("6", "-1", "x"):
        proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                               "--retries", bad], capture_output=True, text=True,
                              env=sim_proc.env(), timeout=30, cwd=ROOT)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "must be a whole number from 0 to 5" in proc.stderr
