"""The shipped end-to-end flow through ``synthmon once`` (issue 23), as a deploy gate runs
it: against the simulator in every mode that breaks one of its steps (and healthy), in JSON
with the failing step named and every step's record; then the same failure in the table
and in JUnit (one testcase per flow, the failing step named), the password and the token
redacted in each."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from junitparser import Failure, JUnitXml

from monitor.demo.simulator import DEMO_PASSWORD
from tests.support.servers import ROOT, SimProc

SHIPPED = ROOT / "probes.yaml"
STEPS = ["login", "create-thread", "chat", "unknown-thread-refused", "read-back",
         "delete-thread"]
S, F = "success", None  # a step that passed; one that did not run
# mode: (outcome, failing step, each step's outcome in order, what the detail starts with)
MODES: dict[str, tuple[str, str | None, list[str | None], str]] = {
    "healthy": ("success", None, [S, S, S, S, S, S], "5 steps passed"),
    "login_refused": ("unexpected_status", "login", ["unexpected_status", F, F, F, F, F],
                      "step login: HTTP 401, expected 200"),
    "token_in_header": ("assertion_failed", "login", ["assertion_failed", F, F, F, F, F],
                        "step login: could not extract token: the JSON has no access_token"),
    "login_echoes_password": ("assertion_failed", "login",
                              ["assertion_failed", F, F, F, F, F],
                              "step login: JSON user.password: expected to be absent"),
    "thread_create_fails": ("unexpected_status", "create-thread",
                            [S, "unexpected_status", F, F, F, F],
                            "step create-thread: HTTP 500, expected 201"),
    "thread_create_200": ("unexpected_status", "create-thread",
                          [S, "unexpected_status", F, F, F, S],
                          "step create-thread: HTTP 200, expected 201"),
    "events_never_complete": ("message_timeout", "chat", [S, S, "message_timeout", F, F, S],
                              "step chat: step agent-events: events still missing"),
    "thread_delete_fails": ("success", None, [S, S, S, S, S, "unexpected_status"],
                            "5 steps passed; always step delete-thread failed "
                            "(unexpected_status): HTTP 500, expected 204"),
}


def once(sim_proc: SimProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "once", "-c", str(SHIPPED), "--probe", "e2e-chat",
         "--retries", "0", *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
        # The table's cells folded at whatever width the CI's terminal left in COLUMNS.
        env=sim_proc.env(PROBE_TIMEOUT="10s", COLUMNS="400"))


def assert_redacted(text: str) -> None:
    assert DEMO_PASSWORD not in text
    assert "eyJ" not in text  # no JWT (the login's access token, the header's)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_through_once_json(sim_proc: SimProc, mode: str) -> None:
    outcome, step, steps, detail = MODES[mode]
    sim_proc.set_mode(mode)
    proc = once(sim_proc, "--format", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == (0 if outcome == "success" else 1), proc.stdout + proc.stderr
    (r,) = json.loads(proc.stdout)
    assert (r["probe"], r["type"], r["outcome"], r["step"]) == ("e2e-chat", "flow", outcome,
                                                                step), r["evidence"]["detail"]
    assert r["evidence"]["detail"].startswith(detail), r["evidence"]["detail"]
    assert [s["name"] for s in r["step_results"]] == STEPS
    assert [s["outcome"] for s in r["step_results"]] == steps
    if step is not None:
        assert r["evidence"]["step_name"] == step
        assert r["evidence"]["detail"].startswith(f"step {step}: ")
    assert_redacted(proc.stdout + proc.stderr)


def test_the_failing_step_in_the_table_and_in_junit(sim_proc: SimProc) -> None:
    sim_proc.set_mode("login_echoes_password")  # the answer carries the password back
    table = once(sim_proc)
    assert table.returncode == 1
    assert "e2e-chat" in table.stdout and "step login: JSON user.password" in table.stdout
    assert "<redacted>" in table.stdout
    assert_redacted(table.stdout + table.stderr)

    junit = once(sim_proc, "--format", "junit")
    assert junit.returncode == 1
    assert_redacted(junit.stdout + junit.stderr)
    xml = JUnitXml.fromstring(junit.stdout)  # type: ignore[no-untyped-call]
    cases: list[Any] = [case for suite in xml for case in suite]
    assert [c.name for c in cases] == ["e2e-chat"]  # one testcase per flow
    (failure,) = cases[0].result
    assert isinstance(failure, Failure) and failure.type == "assertion_failed"
    assert failure.message.startswith("assertion_failed: step login: ")
    out = json.loads(cases[0].system_out)
    assert out["step"] == "login" and len(out["step_results"]) == len(STEPS)
