"""The status page agrees with its evidence (issue 21), against the real simulator and a
daemon: a 101 then a close is never "whole WebSocket layer down"; a negative probe whose
403 comes from a path that refuses valid credentials too (a plain route) is not shown as
refused as expected; and the same verdicts in /api/v1/results."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import DaemonProc, SimProc, http_get, start_daemon

PROBES = """\
defaults: {retries: 0, interval: 1s, timeout: 900ms}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: page-user}, ttl: 5m}
probes:
  - name: health
    http: {url: "${STAGING_URL}/health", expect: {status: 200}}
  - name: ws-golden-path
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      expect_subprotocol: jwt-auth
      steps: [{expect: {json: {type: connect}, timeout: 800ms}}]
  - name: ws-alternate-path
    websocket:
      url: ${STAGING_WS_URL}/ws
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      steps: [{expect: {json: {type: connect}, timeout: 800ms}}]
  - name: ws-rejects-bad-token
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: {type: jwt, secret: not-the-secret, claims: {sub: nobody}}
      expect_rejected: true
"""


def _results(d: DaemonProc, mode: str, want: dict[str, str], timeout: float = 30.0
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = json.loads(http_get(d.url + "/api/v1/results")[1])
        outcomes = {p["probe"]: p["outcome"] for p in data["probes"]}
        if all(outcomes.get(k) == v for k, v in want.items()) and data["incidents"]:
            return data
        assert time.monotonic() < deadline, f"{mode}: {outcomes}"
        time.sleep(0.2)


@pytest.fixture
def daemon(sim_proc: SimProc, tmp_path: Path, daemons: list[DaemonProc]) -> DaemonProc:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)
    return d


@pytest.mark.parametrize("mode", ["close_1011", "close_1003", "close_1000_before_welcome",
                                  "close_1013", "drop_after_accept"])
def test_a_close_after_the_101_is_not_the_layer_down(sim_proc: SimProc, daemon: DaemonProc,
                                                      mode: str) -> None:
    sim_proc.set_mode(mode)
    data = _results(daemon, mode, {"ws-golden-path": "closed_by_server",
                                   "ws-alternate-path": "closed_by_server"})
    (incident,) = data["incidents"]
    assert incident["verdict"] == "cannot tell"
    assert "got a 101, then the server ended the connection" in incident["why"]
    page = http_get(daemon.url + "/")[1]
    assert "Whole WebSocket layer down" not in page
    assert "upgraded, 101 then close" in page


def test_a_refusal_on_a_plain_route_is_not_shown_as_passing(sim_proc: SimProc,
                                                            daemon: DaemonProc) -> None:
    sim_proc.set_mode("ws_route_missing")
    data = _results(daemon, "ws_route_missing", {"ws-golden-path": "handshake_rejected",
                                                 "ws-alternate-path": "success",
                                                 "ws-rejects-bad-token": "success"})
    (incident,) = data["incidents"]
    assert incident["verdict"] == "route suspected"
    assert incident["moot"] == ["ws-rejects-bad-token"]
    page = http_get(daemon.url + "/")[1]
    row = re.search(r'<tr class="[^"]*" data-probe="ws-rejects-bad-token".*?</tr>', page, re.S)
    assert row is not None
    assert "unverified" in row.group(0) and ">success<" not in row.group(0)
    assert "their refusal says nothing about auth now" in page
    # Healed: refused as expected again.
    sim_proc.set_mode("healthy")
    deadline = time.monotonic() + 30
    while "unverified" in http_get(daemon.url + "/")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
