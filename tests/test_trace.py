"""W3C trace context: the pure value (table-tested) and its config keys."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, load_text
from monitor.trace import TraceContext, parse_traceparent, substitute, tracestate_problem


def test_new_contexts_are_valid_distinct_and_sampled() -> None:
    seen = set()
    for _ in range(200):
        t = TraceContext.new()
        parsed = parse_traceparent(t.traceparent())
        assert parsed == (t.trace_id, t.span_id, "01")
        seen.add(t.trace_id)
    assert len(seen) == 200


def test_headers_carry_tracestate_only_when_given() -> None:
    t = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert t.headers() == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-"
                                          "b7ad6b7169203331-01"}
    t2 = TraceContext(t.trace_id, t.span_id, "synthmon=probe,congo=t61rcWkgMzE")
    assert t2.headers()["tracestate"] == "synthmon=probe,congo=t61rcWkgMzE"


@pytest.mark.parametrize(("value", "ok"), [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", True),
    ("00-00000000000000000000000000000000-b7ad6b7169203331-01", False),
    ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", False),
    ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", False),
    ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", False),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", False),
])
def test_parse_traceparent(value: str, ok: bool) -> None:
    assert (parse_traceparent(value) is not None) is ok


@pytest.mark.parametrize(("value", "problem"), [
    ("congo=t61rcWkgMzE", None),
    ("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", None),
    ("tenant@vendor=a b", None),
    ("Upper=x", "is not key=value"),
    ("k=a,b", "is not key=value"),
    ("k=", "is not key=value"),
    ("k=v,k=w", "appears twice"),
    (",".join(f"k{i}=v" for i in range(33)), "more than 32"),
    ("k=" + "v" * 600, "longer than 512"),
    (" , ", "no list member"),
])
def test_tracestate_problem(value: str, problem: str | None) -> None:
    got = tracestate_problem(value)
    assert (got is None) if problem is None else (got is not None and problem in got)


def test_substitute_only_the_run_variables() -> None:
    t = TraceContext.new()
    text = '{"tp":"${traceparent}","t":"${trace_id}","s":"${span_id}","o":"${OTHER}"}'
    assert substitute(text, t.variables()) == (
        f'{{"tp":"{t.traceparent()}","t":"{t.trace_id}","s":"{t.span_id}","o":"${{OTHER}}"}}')
    assert substitute("plain", t.variables()) == "plain"


CONFIG = """\
defaults: {trace: %s, tracestate: "synthmon=default"}
probes:
  - name: a
    http: {url: "http://127.0.0.1:1/"}
  - name: b
    trace: true
    tracestate: "vendor=own"
    http: {url: "http://127.0.0.1:1/"}
  - name: c
    trace: false
    websocket:
      url: "ws://127.0.0.1:1/"
      steps:
        - send: {json: {type: ping, trace: "${trace_id}", tp: "${traceparent}"}}
        - send: {text: "span ${span_id}"}
"""


def test_trace_keys_resolve_from_defaults_and_probes() -> None:
    on = {p.name: p for p in load_text(CONFIG % "true", env={}).probes}
    assert (on["a"].trace, on["a"].tracestate) == (True, "synthmon=default")
    assert (on["b"].trace, on["b"].tracestate) == (True, "vendor=own")
    assert on["c"].trace is False
    off = {p.name: p for p in load_text(CONFIG % "false", env={}).probes}
    assert (off["a"].trace, off["b"].trace, off["c"].trace) == (False, True, False)


def test_run_variables_are_left_for_the_run_not_taken_from_the_environment() -> None:
    # No environment variable is needed (or used) for ${trace_id} and friends.
    probe = load_text(CONFIG % "true", env={"trace_id": "from-env"}).probes[2]
    assert probe.spec.websocket is not None
    steps = probe.spec.websocket.steps
    assert steps[0].send is not None and steps[1].send is not None
    assert steps[0].send.json_ == {"type": "ping", "trace": "${trace_id}",
                                   "tp": "${traceparent}"}
    assert steps[1].send.text == "span ${span_id}"


def test_an_invalid_tracestate_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_text("probes:\n  - name: a\n    tracestate: 'Bad Key=1'\n"
                  "    http: {url: 'http://127.0.0.1:1/'}\n", name="p.yaml", env={})
    assert "probes[0].tracestate" in str(err.value)
    assert "tracestate" in str(err.value)


@pytest.mark.parametrize("zero", ["trace", "span"])
def test_an_all_zero_id_is_drawn_again(zero: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both ids come from one draw; either all zeros (invalid, W3C 3.2.2.3/3.2.2.4) is
    # never handed out.
    valid = (0xABC << 64) | 0xDEF
    draws = iter([0xDEF if zero == "trace" else 0xABC << 64, valid])
    monkeypatch.setattr("monitor.trace.random.getrandbits", lambda bits: next(draws))
    trace = TraceContext.new("k=v")
    assert trace == TraceContext(f"{0xABC:032x}", f"{0xDEF:016x}", "k=v")
