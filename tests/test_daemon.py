"""The daemon as a user runs it: a subprocess against the simulator, scraped over HTTP."""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor.config import load_file
from tests.support.servers import (
    ROOT,
    SECRET,
    DaemonProc,
    SimProc,
    http_get,
    http_post,
    start_daemon,
)
from tests.support.timing import SLACK

SHIPPED = ROOT / "probes.yaml"
FAST = {"PROBE_INTERVAL": "1s", "PROBE_TIMEOUT": "0.9s", "PROBE_RETRIES": "0",
        "PROBE_CLEANUP_TIMEOUT": "0.05s"}


def scrape(d: DaemonProc) -> list[Sample]:
    status, text = http_get(d.url + "/metrics")
    assert status == 200
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def metric(d: DaemonProc, name: str, **labels: str) -> float | None:
    found = [s.value for s in scrape(d)
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def results(d: DaemonProc) -> dict[str, dict[str, object]]:
    status, body = http_get(d.url + "/api/v1/results")
    assert status == 200
    return {p["probe"]: p for p in json.loads(body)["probes"]}


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}")


def last_outcome(d: DaemonProc, probe: str) -> str | None:
    last = results(d)[probe]["last"]
    return None if last is None else str(last["outcome"])  # type: ignore[index]


@pytest.mark.parametrize("loop", [None, "asyncio"])
def test_shipped_probes_pass_against_the_simulator_and_metrics_parse(
        sim_proc: SimProc, tmp_path: Path, daemons: list[DaemonProc], loop: str | None) -> None:
    d = start_daemon(SHIPPED, sim_proc.env(**FAST), tmp_path,
                     *(["--event-loop", loop] if loop else []))
    daemons.append(d)
    started = next(json.loads(line) for line in d.logs().splitlines()
                   if '"started"' in line)
    assert started["event_loop"] == (loop or "uvloop")  # uvloop unless asked otherwise
    wait_for(lambda: all(p["last"] is not None for p in results(d).values()), 20,
             "every probe to run")
    wait_for(lambda: all(last_outcome(d, n) == "success" for n in results(d)), 10,
             "every probe to succeed")
    samples = scrape(d)
    names = {s.name for s in samples}
    for expected in (
        "probe_success", "probe_duration_seconds", "probe_http_status_code",
        "probe_http_duration_seconds", "probe_websocket_status_code",
        "probe_websocket_connection_upgraded", "probe_websocket_close_code",
        "probe_websocket_duration_seconds", "synthmon_probe_outcome",
        "synthmon_probe_runs_total", "synthmon_probe_duration_seconds_bucket",
        "synthmon_probe_step_duration_seconds_bucket",
        "synthmon_probe_last_run_timestamp_seconds",
        "synthmon_probe_last_success_timestamp_seconds", "synthmon_build_info",
        "synthmon_config_last_reload_successful",
        "synthmon_config_last_reload_success_timestamp_seconds", "synthmon_probes_configured",
        "synthmon_scheduler_lag_seconds_bucket", "synthmon_probe_skipped_total",
    ):
        assert expected in names, expected
    assert metric(d, "probe_websocket_status_code", probe="ws-golden-path") == 101
    assert metric(d, "probe_websocket_connection_upgraded", probe="ws-golden-path") == 1
    assert metric(d, "probe_http_status_code", probe="messages-redirects") == 307
    # Probes, not runs: ws-fails-closed counts once, its nine variants run on their own.
    shipped = load_file(SHIPPED, env=sim_proc.env(**FAST)).probes
    assert len(shipped) > len({p.name for p in shipped}) >= 15
    assert metric(d, "synthmon_probes_configured") == len({p.name for p in shipped})
    assert metric(d, "synthmon_probe_step_duration_seconds_count", probe="ws-golden-path",
                  step="agent-events") is not None
    # The end-to-end flow: every step passed, timed under its own name.
    for step in ("login", "create-thread", "chat", "unknown-thread-refused", "read-back",
                 "delete-thread"):
        assert metric(d, "probe_flow_step_success", probe="e2e-chat", step=step) == 1, step
        assert metric(d, "probe_flow_failed_step", probe="e2e-chat", step=step) == 0, step
        assert metric(d, "synthmon_probe_step_duration_seconds_count", probe="e2e-chat",
                      step=step), step
    assert (metric(d, "synthmon_scheduler_lag_seconds_count") or 0) >= 13
    assert d.stop() == 0


def test_regression_is_seen_and_heals(sim_proc: SimProc, tmp_path: Path,
                                      daemons: list[DaemonProc]) -> None:
    d = start_daemon(SHIPPED, sim_proc.env(**FAST), tmp_path)
    daemons.append(d)
    wait_for(lambda: last_outcome(d, "ws-golden-path") == "success", 15)
    sim_proc.set_mode("ws_route_missing")
    wait_for(lambda: last_outcome(d, "ws-golden-path") == "handshake_rejected", 10)
    assert metric(d, "probe_websocket_status_code", probe="ws-golden-path") == 403
    assert metric(d, "probe_success", probe="ws-golden-path") == 0
    assert last_outcome(d, "ws-alternate-path") == "success"
    assert last_outcome(d, "health") == "success"
    sim_proc.set_mode("healthy")
    wait_for(lambda: last_outcome(d, "ws-golden-path") == "success", 10)
    d.stop()


def _config(tmp_path: Path, names: list[str], interval: str = "1s") -> Path:
    path = tmp_path / "probes.yaml"
    body = "".join(f"  - name: {n}\n    http: {{url: '${{STAGING_URL}}/health'}}\n"
                   for n in names)
    path.write_text(f"defaults: {{retries: 0, interval: {interval}, timeout: 0.5s}}\n"
                    f"probes:\n{body}")
    return path


def test_reload_good_and_bad_by_http_and_sighup(sim_proc: SimProc, tmp_path: Path,
                                                daemons: list[DaemonProc]) -> None:
    path = _config(tmp_path, ["a", "b"])
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)
    wait_for(lambda: metric(d, "probe_success", probe="b") == 1, 10)

    _config(tmp_path, ["a", "c"])
    status, body = http_post(d.url + "/-/reload")
    assert status == 200, body
    assert metric(d, "synthmon_probes_configured") == 2
    wait_for(lambda: metric(d, "probe_success", probe="c") == 1, 10)
    assert metric(d, "probe_success", probe="b") is None  # removed probes disappear

    path.write_text("probes:\n  - name: a\n    http: {url: nope}\n")
    status, body = http_post(d.url + "/-/reload")
    assert status == 400
    assert "probes[0].http.url" in json.loads(body)["errors"][0]
    assert metric(d, "synthmon_config_last_reload_successful") == 0
    runs = metric(d, "synthmon_probe_runs_total", probe="c", outcome="success") or 0
    wait_for(lambda: (metric(d, "synthmon_probe_runs_total", probe="c", outcome="success")
                      or 0) > runs, 5, "the old config to keep running")

    _config(tmp_path, ["a", "c", "d"])
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(d, "synthmon_config_last_reload_successful") == 1, 5)
    assert metric(d, "synthmon_probes_configured") == 3
    assert d.stop() == 0
    assert "Traceback" not in d.logs()


def test_sigterm_with_probes_in_flight_exits_0_within_5s(
        sim_proc: SimProc, tmp_path: Path, daemons: list[DaemonProc]) -> None:
    sim_proc.set_mode("slow")  # every answer takes a while: runs are in flight
    path = tmp_path / "probes.yaml"
    body = "".join(f"  - name: p{i}\n    http: {{url: '${{STAGING_URL}}/health'}}\n"
                   for i in range(20))
    path.write_text(f"defaults: {{retries: 0, interval: 0.5s, timeout: 0.45s}}\nprobes:\n{body}")
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)
    time.sleep(1.2)
    t0, sent = time.monotonic(), time.time()
    assert d.stop() == 0
    took = time.monotonic() - t0
    assert d.event_time("stopped") - sent < 5  # the promise, by the daemon's own account
    assert took < 5 + 2 * SLACK  # and the process gone after its teardown
    logs = d.logs()
    assert "Traceback" not in logs
    assert "Task was destroyed" not in logs and "Unclosed" not in logs


def test_location_label_and_shards(sim_proc: SimProc, tmp_path: Path,
                                   daemons: list[DaemonProc]) -> None:
    names = [f"p{i}" for i in range(12)]
    path = _config(tmp_path, names)
    shards = []
    for i in range(3):
        d = start_daemon(path, sim_proc.env(), tmp_path, "--location", "eu-west",
                         "--shard", f"{i}/3")
        daemons.append(d)
        shards.append(d)
    owned: list[set[str]] = []
    for d in shards:
        configured = metric(d, "synthmon_probes_configured", location="eu-west")
        assert configured is not None
        assert metric(d, "synthmon_shards", location="eu-west",
                      shard=str(len(owned))) == 3
        wait_for(lambda d=d: len(results(d)) == 0 or all(  # type: ignore[misc]
            p["last"] is not None for p in results(d).values()), 10)
        owned.append(set(results(d)))
        for s in scrape(d):
            if s.name == "probe_success":
                assert s.labels["location"] == "eu-west"
    assert set().union(*owned) == set(names)
    assert sum(len(o) for o in owned) == len(names)
    for d in shards:
        assert d.stop() == 0


def test_secrets_never_in_logs_metrics_or_pages(sim_proc: SimProc, tmp_path: Path,
                                                daemons: list[DaemonProc]) -> None:
    d = start_daemon(SHIPPED, sim_proc.env(**FAST), tmp_path)
    daemons.append(d)
    wait_for(lambda: all(p["last"] is not None for p in results(d).values()), 20)
    sim_proc.set_mode("close_1008")  # failing runs keep evidence: that must be clean too
    wait_for(lambda: last_outcome(d, "ws-golden-path") == "auth_rejected", 10)
    outputs = [http_get(d.url + p)[1] for p in
               ("/metrics", "/api/v1/results", "/", "/probe/ws-golden-path")]
    d.stop()
    outputs.append(d.logs())
    forms = [SECRET, base64.b64encode(SECRET.encode()).decode().rstrip("="),
             base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")]
    for text in outputs:
        for form in forms:
            assert form not in text
        # Every JWT starts with the base64url of '{"': no token may be shown anywhere.
        assert "eyJ" not in text, text[text.find("eyJ") - 200:text.find("eyJ") + 50]
