"""`synthmon once --format junit`: a JUnit XML report that a CI job can gate a deploy on,
valid against the JUnit schema, with the evidence redacted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
from junitparser import Failure, JUnitXml

from monitor.cli.junit import cases, junit_report
from monitor.cli.once import result_json
from monitor.outcomes import Outcome
from monitor.result import Evidence, Result
from tests.support.servers import ROOT, SECRET, SimProc

XSD = xmlschema.XMLSchema(Path(__file__).parent.parent / "data" / "junit.xsd")
API_TOKEN = "tok-Hq8-secret-in-the-query-0042"

PROBES = """\
defaults: {interval: 60s, timeout: 3s}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: ci}, ttl: 5m}
  other: {type: jwt, secret_env: JWT_SECRET_NOT_SET}
probes:
  - name: health
    http: {url: "${STAGING_URL}/api/health"}
  - name: golden
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      steps: [{expect: {json: {type: connect}, timeout: 2s}}]
  - name: alternate
    websocket:
      url: ${STAGING_WS_URL}/ws
      auth: jwt
  - name: wrong-answer
    http: {url: "${STAGING_URL}/api/health", expect: {json: {status: "${API_TOKEN}"}}}
  - name: no-secret
    websocket: {url: "${STAGING_WS_URL}/api/v1/websocket", auth: other}
"""


def run_junit(sim: SimProc, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                           "--format", "junit", "--retries", "0", *args],
                          capture_output=True, text=True,
                          env=sim.env(API_TOKEN=API_TOKEN), timeout=60, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def test_a_report_ci_can_gate_on(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("ws_route_missing")
    code, out, err = run_junit(sim_proc, tmp_path)
    assert code == 1
    XSD.validate(out)  # raises with the reason if the report is not valid JUnit XML
    report = JUnitXml.fromstring(out)
    (suite,) = list(report)
    assert suite.name == "synthmon" and suite.tests == 5 and suite.failures == 3
    assert suite.errors == 0 and suite.time is not None and suite.time > 0
    by_name = {tc.name: tc for tc in suite}
    assert list(by_name) == ["health", "golden", "alternate", "wrong-answer", "no-secret"]
    outcomes = {}
    for name, tc in by_name.items():
        assert tc.time is not None and 0 <= tc.time < 10
        evidence = json.loads(tc.system_out)
        assert evidence["probe"] == name and "evidence" in evidence
        failures = [r for r in tc.result if isinstance(r, Failure)]
        outcomes[name] = failures[0].type if failures else "success"
        if failures:
            assert failures[0].message.startswith(f"{failures[0].type}: ")
            assert failures[0].message != f"{failures[0].type}: "
            assert evidence["outcome"] == failures[0].type
    assert outcomes == {"health": "success", "golden": "handshake_rejected",
                        "alternate": "success", "wrong-answer": "assertion_failed",
                        "no-secret": "config_error"}
    golden = by_name["golden"].result[0]
    assert "403" in golden.message or "404" in golden.message, golden.message
    no_secret = by_name["no-secret"].result[0]
    assert "JWT_SECRET_NOT_SET is not set" in no_secret.message
    assert no_secret.text.startswith("not run: ")  # config_error: nothing was sent
    assert by_name["golden"].classname == "synthmon.websocket"
    # The expectation quotes a secret-looking variable's value: redacted, like everywhere.
    assert "<redacted>" in by_name["wrong-answer"].result[0].message
    assert "<redacted>" in by_name["wrong-answer"].system_out
    assert API_TOKEN not in out and SECRET not in out and "eyJ" not in out
    assert "warning: probes.yaml" not in err and "JWT_SECRET_NOT_SET is not set" in err


def test_all_green_exits_0(sim_proc: SimProc, tmp_path: Path) -> None:
    code, out, _ = run_junit(sim_proc, tmp_path, "--probe", "health", "--probe", "golden")
    assert code == 0
    XSD.validate(out)
    (suite,) = list(JUnitXml.fromstring(out))
    assert suite.tests == 2 and suite.failures == 0
    assert all(not tc.result for tc in suite)


def _result(probe: str, outcome: Outcome, detail: str = "", body: str | None = None,
            variant: str | None = None) -> Result:
    return Result(probe=probe, type="http", target="http://127.0.0.1:1/", outcome=outcome,
                  started_at=0.0, duration_seconds=0.25, variant=variant,
                  evidence=Evidence(detail=detail, body_excerpt=body))


def test_variants_become_testcases_and_odd_text_stays_valid_xml() -> None:
    ok = _result("p", Outcome.SUCCESS, variant="no_token")
    bad = _result("p", Outcome.ASSERTION_FAILED, "body: \x00\x1b[31m <&> \"quoted\" ]]>",
                  body="\x07binary\x0b" + "é" * 3, variant="expired")
    report = junit_report(cases([ok, bad]), result_json,
                          lambda text: text.replace("quoted", "<redacted>"))
    XSD.validate(report.decode())
    (suite,) = list(JUnitXml.fromstring(report.decode()))
    # One testcase per variant, named as on the page and in the JSON: never folded together.
    assert [tc.name for tc in suite] == ["p@no_token", "p@expired"]
    assert [json.loads(tc.system_out)["probe"] for tc in suite] == ["p@no_token", "p@expired"]
    assert suite.failures == 1 and suite.time == pytest.approx(0.5)
    tc = list(suite)[1]
    assert tc.result[0].type == "assertion_failed"
    assert "<redacted>" in tc.result[0].message and "quoted" not in report.decode()


def test_the_schema_is_not_vacuous() -> None:
    good = junit_report(cases([_result("p", Outcome.TIMEOUT, "slow")]), result_json, str)
    XSD.validate(good.decode())
    for broken in (good.replace(b' name="p"', b""),  # a testcase without a name
                   re.sub(rb'timestamp="[^"]*"', b'timestamp="2026-12-02T06:00:00+00:00"', good),
                   good.replace(b'time="0.25"', b'time="soon"'),
                   good.replace(b"<failure", b"<failed").replace(b"</failure>", b"</failed>")):
        assert not XSD.is_valid(broken.decode())
