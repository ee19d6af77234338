"""One cause pages once, under its own name, for EVERY outcome (monitor.outcomes, the one
home of the names) on a WebSocket, a stream (sse), an HTTP probe and a flow (failing at one
of its steps): exactly one page alert's
expression holds (the specific one when there is one, else the generic
SynthmonProbeFailing), or none for the outcomes that are tickets (``slow``,
``credentials_unavailable``).

The pages about a target fire at their first evaluation (``for: 0s``), so their expression
holding is their firing. Evaluated by promtool (``promql_expr_test``, a test file written
for the run) over the series synthmon exports for a probe that failed from two locations;
the annotations are checked by alerts.test.yml and the end-to-end test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.outcomes import Outcome

from .support import ALERTS, binary, load_yaml, run

PAGES_GROUP = "synthmon-probe-failures"
HOST = "staging.example.com"
TICKETS = {Outcome.SLOW, Outcome.CREDENTIALS_UNAVAILABLE}
AFTER_UPGRADE = {Outcome.SUBPROTOCOL_MISMATCH, Outcome.AUTH_REJECTED, Outcome.CLOSED_BY_SERVER,
                 Outcome.UNEXPECTED_MESSAGE, Outcome.MESSAGE_TIMEOUT, Outcome.AUTH_NOT_ENFORCED,
                 Outcome.TOKEN_REFLECTED, Outcome.SLOW}
STREAM = {Outcome.NOT_EVENT_STREAM: "SynthmonStreamBroken",
          Outcome.STREAM_STALLED: "SynthmonStreamBroken",
          Outcome.STREAM_INCOMPLETE: "SynthmonStreamBroken",
          Outcome.STREAM_BUFFERED: "SynthmonStreamBuffered"}
NO_ANSWER = {Outcome.DNS_ERROR, Outcome.CONNECT_REFUSED, Outcome.CONNECT_TIMEOUT,
             Outcome.TLS_ERROR, Outcome.CONNECTION_RESET, Outcome.TIMEOUT,
             Outcome.PROTOCOL_ERROR, Outcome.CONFIG_ERROR, Outcome.CREDENTIALS_UNAVAILABLE}


def _pages() -> dict[str, str]:
    group = next(g for g in load_yaml(ALERTS)["groups"] if g["name"] == PAGES_GROUP)
    return {r["alert"]: r["expr"] for r in group["rules"]}


def expected_page(kind: str, outcome: Outcome, status: int) -> str | None:
    """The one page a failure must cause: the contract this test holds the rules to."""
    if outcome in TICKETS:
        return None
    specific = {
        Outcome.AUTH_NOT_ENFORCED: "SynthmonAuthNotEnforced",
        Outcome.TOKEN_REFLECTED: "SynthmonTokenReflected",
        Outcome.SUBPROTOCOL_MISMATCH: "SynthmonWebSocketSubprotocolMismatch",
    }
    if outcome in specific:
        return specific[outcome]
    if kind == "flow":  # whatever its failing step's kind: the page names the step
        return "SynthmonFlowStepFailing"
    if kind == "sse" and outcome in STREAM:
        return STREAM[outcome]
    if kind == "websocket":
        if status == 403:
            return "SynthmonWebSocketHandshakeForbidden"  # no other path upgrades here
        ws = {Outcome.NOT_UPGRADED: "SynthmonWebSocketNotUpgraded",
              Outcome.AUTH_REJECTED: "SynthmonWebSocketAuthRejected",
              Outcome.MESSAGE_TIMEOUT: "SynthmonGoldenPathEventsMissing",
              Outcome.UNEXPECTED_MESSAGE: "SynthmonGoldenPathEventsMissing"}
        if outcome in ws:
            return ws[outcome]
    return "SynthmonProbeFailing"


def _cases() -> list[tuple[str, Outcome, int]]:
    cases: list[tuple[str, Outcome, int]] = []
    for outcome in Outcome:
        if outcome is Outcome.SUCCESS:
            continue
        if outcome is Outcome.HANDSHAKE_REJECTED:
            cases += [("websocket", outcome, s) for s in (401, 403, 405, 429, 503)]
        elif outcome is Outcome.NOT_UPGRADED:
            cases += [("websocket", outcome, s) for s in (200, 302)]
        elif outcome in NO_ANSWER:
            cases.append(("websocket", outcome, 0))
        else:
            cases.append(("websocket", outcome, 101 if outcome in AFTER_UPGRADE else 200))
        if outcome in STREAM or outcome in (Outcome.UNEXPECTED_MESSAGE, Outcome.TIMEOUT,
                                            Outcome.SLOW):
            cases.append(("sse", outcome, 0 if outcome is Outcome.TIMEOUT else 200))
        if outcome not in (Outcome.HANDSHAKE_REJECTED, Outcome.NOT_UPGRADED) \
                and outcome not in STREAM:
            status = 0 if outcome in NO_ANSWER else 503 if outcome is Outcome.UNEXPECTED_STATUS \
                else 200
            cases.append(("http", outcome, status))
        cases.append(("flow", outcome, 0))  # a flow exports no status of its own
    return cases


def _series(kind: str, outcome: Outcome, status: int, location: str,
            probe: str = "p") -> list[dict[str, str]]:
    path = {"websocket": "/api/v1/websocket", "sse": "/v1/chat/completions"}.get(
        kind, "/api/health")
    scheme = "wss" if kind == "websocket" else "https"
    labels = (f'probe="{probe}", type="{kind}", target="{scheme}://{HOST}{path}", '
              f'environment="staging", location="{location}", job="synthmon", '
              f'instance="synthmon-{location}:9115"')
    out = [{"series": f"probe_success{{{labels}}}", "values": "0x5"},
           {"series": f'synthmon_probe_outcome{{{labels}, outcome="success"}}', "values": "0x5"},
           {"series": f'synthmon_probe_outcome{{{labels}, outcome="{outcome.value}"}}',
            "values": "1x5"}]
    if kind == "flow":  # its steps: the one whose failure is the outcome, and the others
        return out + [{"series": f'probe_flow_failed_step{{{labels}, step="{step}"}}',
                       "values": f"{int(step == 'chat')}x5"} for step in ("login", "chat")]
    if kind == "websocket":
        close = 1008 if outcome is Outcome.AUTH_REJECTED else \
            1011 if outcome is Outcome.CLOSED_BY_SERVER else 0
        out += [{"series": f"probe_websocket_status_code{{{labels}}}", "values": f"{status}x5"},
                {"series": f"probe_websocket_connection_upgraded{{{labels}}}",
                 "values": f"{int(status == 101)}x5"},
                {"series": f"probe_websocket_close_code{{{labels}}}", "values": f"{close}x5"}]
    else:
        out.append({"series": f"probe_http_status_code{{{labels}}}", "values": f"{status}x5"})
    return out


CASES = _cases()


def test_every_outcome_is_a_case() -> None:
    assert {o for _, o, _ in CASES} == set(Outcome) - {Outcome.SUCCESS}


def test_every_failure_pages_exactly_once_under_its_own_name(tmp_path: Path) -> None:
    pages = _pages()
    tests: list[dict[str, Any]] = []
    for kind, outcome, status in CASES:
        wanted = expected_page(kind, outcome, status)
        tests.append({
            "name": f"{kind} {outcome.value} {status}: {wanted or 'no page'}",
            "interval": "1m",
            "input_series": [s for loc in ("eu-west", "us-east")
                             for s in _series(kind, outcome, status, loc)],
            "promql_expr_test": [
                {"expr": f"count({expr}) or vector(0)", "eval_time": "2m",
                 # both locations page for the expected alert, nothing else holds
                 "exp_samples": [{"labels": "{}", "value": 2 if name == wanted else 0}]}
                for name, expr in pages.items()],
        })
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "every_outcome.test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["alerts.yml"], "evaluation_interval": "10s", "tests": tests},
        sort_keys=False, width=100000), encoding="utf-8")
    result = run([binary("promtool"), "test", "rules", "every_outcome.test.yml"], cwd=tmp_path)
    assert result.returncode == 0, _failures(result.stdout + result.stderr)


# What a flow stopped at its WebSocket step shares with the WebSocket probes that fail the
# same way (alerts.yml, SynthmonFlowStepFailing): one cause, their page alone.
FLOW_AT_WEBSOCKET_OUTCOMES = {"handshake_rejected", "not_upgraded", "auth_rejected",
                              "closed_by_server", "connection_reset", "message_timeout",
                              "unexpected_message"}
FLOW_AT_WEBSOCKET = [(o, st) for k, o, st in CASES
                     if k == "websocket" and o.value in FLOW_AT_WEBSOCKET_OUTCOMES]


def test_a_flow_stopped_the_way_the_websocket_probes_fail_adds_no_page(tmp_path: Path) -> None:
    """The shipped flow and the WebSocket probes of its host, failing the same way from two
    locations: the WebSocket probes' page, and no SynthmonFlowStepFailing; the same flow
    with the WebSocket probes passing pages alone (the cases above)."""
    assert {o.value for o, _ in FLOW_AT_WEBSOCKET} == FLOW_AT_WEBSOCKET_OUTCOMES
    flow_rule = _pages()["SynthmonFlowStepFailing"]
    assert flow_rule.count("|".join(sorted(FLOW_AT_WEBSOCKET_OUTCOMES, key=flow_rule.find))) \
        == 2  # the same outcomes in the rule, the flow's and the WebSocket probes'
    pages = _pages()
    tests: list[dict[str, Any]] = []
    for outcome, status in FLOW_AT_WEBSOCKET:
        wanted = expected_page("websocket", outcome, status)
        tests.append({
            "name": f"websocket and flow {outcome.value} {status}: {wanted} alone",
            "interval": "1m",
            "input_series": [s for loc in ("eu-west", "us-east")
                             for s in _series("websocket", outcome, status, loc, "ws")
                             + _series("flow", outcome, 0, loc, "flow")],
            "promql_expr_test": [
                {"expr": f"count({expr}) or vector(0)", "eval_time": "2m",
                 "exp_samples": [{"labels": "{}", "value": 2 if name == wanted else 0}]}
                for name, expr in pages.items()],
        })
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "flow.test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["alerts.yml"], "evaluation_interval": "10s", "tests": tests},
        sort_keys=False, width=100000), encoding="utf-8")
    result = run([binary("promtool"), "test", "rules", "flow.test.yml"], cwd=tmp_path)
    assert result.returncode == 0, _failures(result.stdout + result.stderr)


def _failures(output: str) -> str:
    """promtool's report cut to the names and the expressions that did not match."""
    keep = [line for line in output.splitlines()
            if "name:" in line or "expr:" in line or "exp:" in line or "got:" in line]
    return "\n".join(keep[:120]) or output


@pytest.mark.parametrize(("kind", "outcome", "status"), CASES,
                         ids=[f"{k}-{o.value}-{s}" for k, o, s in CASES])
def test_the_contract_names_one_page_per_failure(kind: str, outcome: Outcome,
                                                 status: int) -> None:
    """The table above is total: every failure maps to a page alert that exists, or to none
    only for the outcomes that are tickets."""
    wanted = expected_page(kind, outcome, status)
    assert wanted is None or wanted in _pages(), wanted
    assert (wanted is None) == (outcome in TICKETS)
