"""The real Prometheus, with exemplar storage on, scrapes the real daemon: the exemplars it
stores on the duration and step histograms are the trace ids the runs logged."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.alerting.support import running_prometheus, write_test_prometheus_config
from tests.support.servers import DaemonProc, SimProc, start_daemon

pytestmark = pytest.mark.e2e

PROBES = """\
defaults: {interval: 1s, timeout: 900ms, retries: 0}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: exemplar-user}, ttl: 5m}
probes:
  - name: health
    http: {url: "${STAGING_URL}/health"}
  - name: golden
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      steps:
        - {name: welcome, expect: {json: {type: connect}, timeout: 800ms}}
"""


def query_exemplars(prometheus: str, query: str) -> list[dict[str, Any]]:
    now = time.time()
    url = (f"{prometheus}/api/v1/query_exemplars?" + urllib.parse.urlencode(
        {"query": query, "start": now - 600, "end": now + 60}))
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"])


def exemplar_ids(data: list[dict[str, Any]]) -> dict[str, set[str]]:
    """probe → the trace ids of its exemplars."""
    out: dict[str, set[str]] = {}
    for series in data:
        probe = series["seriesLabels"]["probe"]
        for ex in series["exemplars"]:
            out.setdefault(probe, set()).add(ex["labels"]["trace_id"])
    return out


def logged_ids(daemon: DaemonProc) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in daemon.logs().splitlines():
        if '"probe_run"' in line:
            event = json.loads(line)
            out.setdefault(event["probe"], set()).add(event["trace_id"])
    return out


def test_prometheus_stores_the_logged_trace_ids_as_exemplars(sim_proc: SimProc,
                                                            tmp_path: Path,
                                                            daemons: list[DaemonProc]) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    daemon = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(daemon)
    target = daemon.url.removeprefix("http://")
    config = write_test_prometheus_config(tmp_path / "prom", synthmon_targets=[target],
                                          alertmanager_target="127.0.0.1:9", rule_files=[])
    with running_prometheus(config, tmp_path, "--enable-feature=exemplar-storage") as prom:
        deadline = time.monotonic() + 60
        while True:
            runs = exemplar_ids(query_exemplars(prom, "synthmon_probe_duration_seconds_bucket"))
            steps = exemplar_ids(query_exemplars(
                prom, 'synthmon_probe_step_duration_seconds_bucket{step="welcome"}'))
            if all(len(runs.get(p, ())) >= 3 for p in ("health", "golden")) and \
                    len(steps.get("golden", ())) >= 3:
                break
            assert time.monotonic() < deadline, f"too few exemplars after 60 s: {runs} {steps}"
            time.sleep(0.5)
    logged = logged_ids(daemon)
    for probe in ("health", "golden"):
        assert runs[probe] <= logged[probe], (probe, runs[probe] - logged[probe])
    assert steps["golden"] <= logged["golden"]
