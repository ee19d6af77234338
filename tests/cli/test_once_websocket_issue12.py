"""`synthmon once --format json` against the simulator, WebSocket side of issue 12: the
variants of a negative probe, a reflected token, every refusal and close with its hint,
event matching across envelopes, event timings and the transcript."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.config import VARIANTS
from monitor.result import TRANSCRIPT_FRAMES
from tests.support.servers import ROOT, SECRET, SimProc

EVENTS = "[agent_started, agent_thinking, tool_executing, tool_completed, agent_completed]"
PROBES = f"""\
defaults: {{interval: 60s, timeout: 4s}}
auth:
  jwt:
    type: jwt
    secret_env: JWT_SECRET_STAGING
    claims: {{sub: once-user, iss: netra-auth-service, aud: netra-backend}}
    ttl: 5m
probes:
  - name: fails-closed
    websocket:
      url: ${{STAGING_WS_URL}}/api/v1/websocket
      auth: jwt
      expect_rejected: true
      variants: [no_token, expired, not_yet_valid, bad_signature, alg_none, wrong_issuer,
                 wrong_audience, token_in_query_only, bypass_headers]
      bypass_headers: {{X-E2E-Test: "true"}}
  - name: golden
    websocket:
      url: ${{STAGING_WS_URL}}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      steps:
        - {{name: welcome, expect: {{json: {{type: connect}}, timeout: 2s}}}}
        - {{name: ask, send: {{json: {{type: user_message, payload: {{content: hi}}}}}}}}
        - name: events
          expect_events:
            types: {EVENTS}
            field: [event, type]
            aliases: {{agent_started: [agent_start], tool_executing: [tool_execute],
                      tool_completed: [tool_complete], agent_completed: [agent_complete]}}
            timeout: 1500ms
  - name: strict-events
    websocket:
      url: ${{STAGING_WS_URL}}/ws
      auth: jwt
      steps:
        - {{expect: {{json: {{type: connect}}, timeout: 2s}}}}
        - {{send: {{json: {{type: user_message, payload: {{content: hi}}}}}}}}
        - name: events
          expect_events: {{types: {EVENTS}, timeout: 1500ms, fail_on_duplicates: true}}
"""


@pytest.fixture
def sim_proc(shared_sim_proc: SimProc) -> SimProc:
    """The module's one simulator (tests/conftest.py): a test here only switches its mode
    and runs `once` against it, so a process of its own would change nothing but the time."""
    return shared_sim_proc


def once(sim: SimProc, tmp_path: Path, *names: str) -> tuple[int, dict[str, dict[str, Any]],
                                                             str]:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    args = [a for n in names for a in ("--probe", n)]
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                           "--format", "json", "--retries", "0", *args],
                          capture_output=True, text=True, env=sim.env(), timeout=60, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    items = json.loads(proc.stdout)
    out = proc.stdout + proc.stderr
    assert SECRET not in out and "eyJ" not in out  # no secret, no token in any form
    return proc.returncode, {r["probe"]: r for r in items}, out


def test_healthy_refuses_every_variant_each_its_own_object(sim_proc: SimProc,
                                                          tmp_path: Path) -> None:
    code, res, out = once(sim_proc, tmp_path, "fails-closed")
    assert [r["variant"] for r in res.values()] == list(VARIANTS)
    for key, r in res.items():
        assert r["outcome"] == "success" and r["status_code"] == 403, (key, out)
        assert r["evidence"]["detail"].startswith("refused as expected")
    assert code == 0


GETS_IN = {
    "auth_demo_mode": {"no_token", "token_in_query_only"},
    "auth_emergency_bypass": {"expired", "not_yet_valid", "bad_signature", "alg_none",
                              "wrong_issuer", "wrong_audience", "bypass_headers"},
    "auth_test_headers": {"bypass_headers"},
    "auth_lax_validation": {"expired", "not_yet_valid", "alg_none", "wrong_issuer",
                            "wrong_audience"},
    "auth_query_token": {"token_in_query_only"},
    "auth_not_enforced": set(VARIANTS),
}


@pytest.mark.parametrize("mode", sorted(GETS_IN))
def test_every_variant_that_gets_in_is_named(sim_proc: SimProc, tmp_path: Path,
                                             mode: str) -> None:
    sim_proc.set_mode(mode)
    code, res, out = once(sim_proc, tmp_path, "fails-closed")
    got_in = {r["variant"] for r in res.values() if r["outcome"] == "auth_not_enforced"}
    assert got_in == GETS_IN[mode], out
    for r in res.values():
        if r["variant"] in got_in:
            assert r["evidence"]["detail"].startswith(f"variant {r['variant']} ("), r
            assert " got in: the server accepted the connection (101)" in r["evidence"]["detail"]
        else:
            assert r["outcome"] == "success", r
    assert code == 1


def test_token_echoed_as_the_subprotocol(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("token_echo")
    _, res, _ = once(sim_proc, tmp_path, "golden")
    golden = res["golden"]
    assert golden["outcome"] == "token_reflected" and golden["status_code"] == 101
    assert golden["evidence"]["reflected_in"] == "Sec-WebSocket-Protocol"
    assert "echoes the token offer" in golden["evidence"]["detail"]
    assert dict(golden["evidence"]["headers"])["Sec-WebSocket-Protocol"] == "jwt.<redacted>"


@pytest.mark.parametrize(("mode", "probe", "outcome", "words"), [
    ("upgrade_405", "golden", "handshake_rejected", "a REST route"),
    ("upgrade_405", "fails-closed@expired", "handshake_rejected",
     "the probe learned nothing about auth"),
    ("not_ready_503", "golden", "handshake_rejected", "not ready (a readiness gate"),
    ("not_ready_503", "fails-closed@no_token", "handshake_rejected",
     "learned nothing about auth"),
    ("rate_limited_429", "golden", "handshake_rejected", "rate limited"),
    ("ws_route_missing", "golden", "handshake_rejected", "no WebSocket route at this path"),
    ("close_1003", "golden", "closed_by_server", "1003 “No supported subprotocols”"),
    ("close_1000_before_welcome", "golden", "closed_by_server",
     "closed cleanly before the welcome"),
    ("close_1011", "golden", "closed_by_server", "1011 “service not ready”"),
    ("close_1013", "golden", "closed_by_server", "try again later"),
    ("drop_after_accept", "golden", "closed_by_server", "1006: the connection dropped"),
    ("close_1008", "golden", "auth_rejected", "usually refused credentials"),
])
def test_every_refusal_and_close_has_its_hint(sim_proc: SimProc, tmp_path: Path, mode: str,
                                              probe: str, outcome: str, words: str) -> None:
    sim_proc.set_mode(mode)
    _, res, out = once(sim_proc, tmp_path, probe.split("@")[0])
    r = res[probe]
    assert r["outcome"] == outcome, out
    assert words in (r["evidence"]["hint"] or ""), r["evidence"]


def test_retry_after_is_kept(sim_proc: SimProc, tmp_path: Path) -> None:
    for mode, value in (("not_ready_503", "5"), ("rate_limited_429", "30")):
        sim_proc.set_mode(mode)
        _, res, _ = once(sim_proc, tmp_path, "golden")
        assert res["golden"]["evidence"]["retry_after"] == value
        assert f"(Retry-After: {value})" in res["golden"]["evidence"]["hint"]


def test_upgrade_answered_like_a_plain_get(sim_proc: SimProc, tmp_path: Path) -> None:
    for mode in ("upgrade_json", "upgrade_405"):
        sim_proc.set_mode(mode)
        _, res, _ = once(sim_proc, tmp_path, "golden")
        hint = res["golden"]["evidence"]["diagnosis"]["hint"]
        assert "answered as a plain GET, most likely by a proxy dropping the Upgrade" in hint


def test_closed_without_answer_still_diagnosed(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("close_without_answer")
    _, res, _ = once(sim_proc, tmp_path, "golden")
    golden = res["golden"]
    assert golden["outcome"] == "connection_reset" and golden["status_code"] is None
    diagnosis = golden["evidence"]["diagnosis"]
    assert diagnosis["status_code"] == 200 and "websocket_ssot" in diagnosis["body_excerpt"]
    assert "without answering the upgrade" in diagnosis["hint"]


@pytest.mark.parametrize(("mode", "path", "spelling"), [
    ("events_wrapped", "event", "agent_started"),
    ("events_aliased", "type", "agent_start"),
    ("healthy", "type", "agent_started"),
])
def test_known_envelopes_pass_and_say_how_they_matched(sim_proc: SimProc, tmp_path: Path,
                                                       mode: str, path: str,
                                                       spelling: str) -> None:
    sim_proc.set_mode(mode)
    _, res, out = once(sim_proc, tmp_path, "golden")
    golden = res["golden"]
    assert golden["outcome"] == "success", out
    first = golden["evidence"]["event_matches"][0]
    assert first == {"event": "agent_started", "path": path, "spelling": spelling}
    assert [e["event"] for e in golden["events"]] == [
        "agent_started", "agent_thinking", "tool_executing", "tool_completed",
        "agent_completed"]
    assert all(e["step"] == "events" and e["seconds"] >= 0 for e in golden["events"])


def test_duplicates_counted_or_failed(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("events_duplicated")
    _, res, out = once(sim_proc, tmp_path, "golden", "strict-events")
    assert res["golden"]["outcome"] == "success", out
    # The step ends with the first agent_completed: its twin comes after it.
    assert dict(res["golden"]["evidence"]["duplicates"]) == {
        "agent_started": 1, "agent_thinking": 1, "tool_executing": 1, "tool_completed": 1}
    strict = res["strict-events"]
    assert strict["outcome"] == "unexpected_message"
    assert "got agent_started again (fail_on_duplicates" in strict["evidence"]["detail"]


@pytest.mark.parametrize(("mode", "outcome", "frames", "words"), [
    ("events_wrapped", "message_timeout", 5, "came under the field 'event'"),
    # agent_thinking, which it knows, comes before any agent_started it recognises.
    ("events_aliased", "unexpected_message", 2, "add aliases: {agent_started: [agent_start]"),
])
def test_a_strict_step_says_the_events_came_in_another_shape(
        sim_proc: SimProc, tmp_path: Path, mode: str, outcome: str, frames: int,
        words: str) -> None:
    sim_proc.set_mode(mode)
    _, res, out = once(sim_proc, tmp_path, "strict-events")
    strict = res["strict-events"]
    assert strict["outcome"] == outcome, out
    assert words in strict["evidence"]["hint"]
    frames_seen = strict["evidence"]["frames_seen"]
    assert len(frames_seen) == frames
    assert {p for p, _ in frames_seen[0]["types"]} >= {"type", "event", "payload.type"}


def test_an_agent_that_dies_is_timed_up_to_where_it_died(sim_proc: SimProc,
                                                         tmp_path: Path) -> None:
    sim_proc.set_mode("agent_dies")
    _, res, out = once(sim_proc, tmp_path, "golden")
    golden = res["golden"]
    assert golden["outcome"] == "message_timeout", out
    assert [e["event"] for e in golden["events"]] == [
        "agent_started", "agent_thinking", "tool_executing", "tool_completed"]
    assert "events still missing" in golden["evidence"]["detail"]


def test_the_transcript(sim_proc: SimProc, tmp_path: Path) -> None:
    _, res, _ = once(sim_proc, tmp_path, "golden")
    transcript = res["golden"]["transcript"]
    assert 1 < len(transcript) <= TRANSCRIPT_FRAMES
    assert res["golden"]["transcript_omitted"] == 0
    kinds = [(f["direction"], f["kind"]) for f in transcript]
    assert kinds[0] == ("received", "text") and ("sent", "text") in kinds
    assert kinds[-1][1] == "close"
    offsets = [f["offset_ms"] for f in transcript]
    assert offsets == sorted(offsets)
    assert all(len(f["data"].encode()) <= 256 + 3 for f in transcript)
    assert '"connect"' in transcript[0]["data"]
