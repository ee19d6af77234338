"""One name per run in every output: a negative probe's variant is ``NAME@VARIANT``
(monitor.runname) in `once`'s table, JSON and JUnit, in the `--probe` error and selection,
in the daemon's log lines, on its status page, in /api/v1/results (records and incidents)
and in the spans. Against the simulator in auth_demo_mode, where two of the three variants
get in: the outputs of failing and passing variants alike."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from junitparser import Failure, JUnitXml

from monitor.outcomes import Outcome
from monitor.result import Result
from monitor.runname import run_name, split
from monitor.sinks.spans import records_of
from tests.support.html import parse_strict
from tests.support.servers import ROOT, DaemonProc, SimProc, http_get, start_daemon

PROBES = """\
defaults: {interval: 60s, timeout: 3s, retries: 0}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: once-user}, ttl: 5m}
probes:
  - name: health
    http: {url: "${STAGING_URL}/health"}
  - name: threads-fail-closed
    http:
      url: ${STAGING_URL}/api/threads
      auth: jwt
      expect_rejected: true
      variants: [no_token, expired, token_in_query_only]
"""
NAMES = ["health", "threads-fail-closed@no_token", "threads-fail-closed@expired",
         "threads-fail-closed@token_in_query_only"]
# auth_demo_mode: no token is a demo user; so is a token in the query only (no header).
GOT_IN = ["threads-fail-closed@no_token", "threads-fail-closed@token_in_query_only"]


def once(sim: SimProc, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**sim.env(), "COLUMNS": "200"})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def table_names(out: str) -> list[str]:
    """The probe column of `once`'s table (ASCII box when piped), continuation lines aside."""
    cells = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
    return [c for c in cells[1:] if c]


def test_once_names_every_run_alike_in_every_format(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("auth_demo_mode")
    proc = once(sim_proc, tmp_path, "--format", "json")
    assert proc.returncode == 1
    items = json.loads(proc.stdout)
    assert [r["probe"] for r in items] == NAMES
    assert [r["variant"] for r in items] == [split(n)[1] for n in NAMES]
    assert [r["probe"] for r in items if r["outcome"] == "auth_not_enforced"] == GOT_IN

    proc = once(sim_proc, tmp_path, "--format", "table", "--color", "never")
    assert proc.returncode == 1
    assert table_names(proc.stdout) == NAMES
    assert "variant no_token ·" not in proc.stdout  # the name says it; no second spelling

    proc = once(sim_proc, tmp_path, "--format", "junit")
    assert proc.returncode == 1
    (suite,) = list(JUnitXml.fromstring(proc.stdout))
    cases = list(suite)
    assert [tc.name for tc in cases] == NAMES  # unique: no CI viewer folds them together
    assert [json.loads(tc.system_out)["probe"] for tc in cases] == NAMES
    assert [tc.name for tc in cases if any(isinstance(r, Failure) for r in tc.result)] == GOT_IN


def test_once_probe_takes_a_run_name(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("auth_demo_mode")
    proc = once(sim_proc, tmp_path, "--format", "json", "--probe", "threads-fail-closed@expired")
    assert proc.returncode == 0, proc.stderr  # the one variant asked for, refused as it should
    assert [r["probe"] for r in json.loads(proc.stdout)] == ["threads-fail-closed@expired"]

    proc = once(sim_proc, tmp_path, "--format", "json", "--probe", "threads-fail-closed",
                "--probe", "health", "--probe", "threads-fail-closed@no_token")
    assert [r["probe"] for r in json.loads(proc.stdout)] == NAMES  # NAME: all its variants

    for wrong in ("threads-fail-closed@nope", "threads", "health@no_token"):
        proc = once(sim_proc, tmp_path, "--probe", wrong, "--probe", "health")
        assert proc.returncode == 1 and proc.stdout == ""
        line = proc.stderr.strip().splitlines()[-1]
        assert line.startswith(f"unknown probe(s): {wrong}; configured: "), line
        listed = line.split("; configured: ")[1].split(" (")[0].split(", ")
        assert listed == NAMES, line  # each run once, by its one name
        assert "NAME alone runs all of a probe's variants" in line


def test_the_daemon_names_every_run_alike(sim_proc: SimProc, tmp_path: Path,
                                          daemons: list[DaemonProc]) -> None:
    sim_proc.set_mode("auth_demo_mode")
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES.replace("interval: 60s, timeout: 3s", "interval: 2s, timeout: 1.5s"))
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)
    deadline = time.monotonic() + 30
    while True:
        api: dict[str, Any] = json.loads(http_get(d.url + "/api/v1/results")[1])
        outcomes = {p["probe"]: p["outcome"] for p in api["probes"]}
        if None not in outcomes.values() and all(outcomes[n] == "auth_not_enforced"
                                                 for n in GOT_IN):
            break
        assert time.monotonic() < deadline, outcomes
        time.sleep(0.2)

    # /api/v1/results: the probes, every record of theirs, and the incident.
    assert list(outcomes) == NAMES
    for p in api["probes"]:
        assert {r["probe"] for r in [p["last"], *p["runs"]]} == {p["probe"]}
    (incident,) = [i for i in api["incidents"] if i["outcome"] == "auth_not_enforced"]
    assert incident["probes"] == GOT_IN
    assert all(any(line.startswith(n + " ") for line in incident["evidence"]) for n in GOT_IN)

    # The status page: its rows, the incident card's members and their links.
    page = parse_strict(http_get(d.url + "/")[1])
    assert [tr.get("data-probe") for tr in page.iter("tr") if tr.get("data-probe")] == NAMES
    (card,) = [s for s in page.iter("section")
               if s.get("data-verdict") == "authentication not enforced"]
    links = [(a.get("data-probe"), a.get("href")) for a in card.iter("a")]
    assert links == [(n, "probe/" + n.replace("@", "%40")) for n in GOT_IN]
    assert re.search(r"Authentication not enforced: threads-fail-closed@no_token, "
                     r"threads-fail-closed@token_in_query_only got in", http_get(d.url + "/")[1])
    for name in NAMES:
        status, body = http_get(d.url + "/probe/" + name.replace("@", "%40"))
        assert status == 200 and f"<h1>{name}</h1>" in body
    status, body = http_get(d.url + "/probe/threads-fail-closed")
    assert status == 200 and all(f'data-probe="{n}"' in body for n in NAMES[1:])
    assert http_get(d.url + "/probe/threads-fail-closed@nope")[0] == 404

    # The log: every probe_run line names its run the same way.
    d.stop()
    logged = [json.loads(line) for line in d.logs().splitlines() if line.startswith("{")]
    runs = [e for e in logged if e.get("event") == "probe_run"]
    assert {e["probe"] for e in runs} == set(NAMES)
    for e in runs:
        assert e["probe"] == run_name(split(e["probe"])[0], e.get("variant"))


def test_a_span_is_named_after_its_run() -> None:
    r = Result(probe="neg", type="http", target="http://127.0.0.1:9/", variant="no_token",
               outcome=Outcome.AUTH_NOT_ENFORCED, started_at=time.time(),
               duration_seconds=0.01, trace_id="0af7651916cd43dd8448eb211c80319c",
               span_id="b7ad6b7169203331")
    _, spans = records_of(r)
    assert spans[0].name == "neg@no_token"
    assert spans[0].attributes["synthmon.probe"] == "neg@no_token"
    assert spans[0].attributes["synthmon.variant"] == "no_token"
