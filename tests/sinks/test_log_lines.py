"""The run log's own probe_run lines (monitor.sinks.log._RunLines) against the chain they
stand in for: byte for byte the line structlog's configured chain writes for the same run
(log_result through structlog.get_logger), over every outcome and every field a line can
hold, with secrets, control characters and long values (which the chain itself must
write), the level filter, and the remembered heads forgotten when they must be."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.redact import REDACTED, Redactor
from monitor.result import Evidence, Result
from monitor.sinks import log as log_module
from monitor.sinks.log import RunLog, configure_logging, log_result

SECRET = "lines-Secret-5e4d3c2b1a"
INSTANTS = (  # with microseconds, without, one microsecond: what isoformat() writes differs
    dt.datetime(2026, 12, 7, 10, 13, 22, 123456, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 7, 10, 13, 22, tzinfo=dt.UTC),
    dt.datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
)


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield None
    structlog.configure(**saved)


class _Frozen:
    """Both clocks stopped at one instant: datetime.now, which the chain's stamper reads,
    and time_ns, which the run log's own clock reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ns = 0
        frozen = self

        class Frozen(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
                return cls.fromtimestamp(frozen.ns // 1000 / 1e6, tz)

        monkeypatch.setattr(log_module, "datetime", Frozen)
        monkeypatch.setattr(log_module, "time_ns", lambda: self.ns)

    def at(self, instant: dt.datetime) -> None:
        self.ns = round(instant.timestamp()) * 10**9 + instant.microsecond * 1000 + 999


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Frozen:
    return _Frozen(monkeypatch)


def _result(outcome: Outcome, **kw: Any) -> Result:
    base: dict[str, Any] = dict(
        probe="api-health", type="http", target="http://127.0.0.1:8080/health",
        outcome=outcome, started_at=1.0, duration_seconds=0.00123, status_code=200,
        trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331",
        evidence=Evidence(detail="HTTP 200 in 1ms"))
    base.update(kw)
    return Result(**base)


# Every field a line can hold, alone and together; the last ones the chain must write.
SHAPES: list[dict[str, Any]] = [
    {},
    dict(trace_id=None, span_id=None),
    dict(trace_id="0af7651916cd43dd8448eb211c80319c", span_id=None),
    dict(variant="expired", probe="ws-fails-closed", type="websocket",
         target="wss://h.example/api/v1/websocket"),
    dict(status_code=None, close_code=1008),
    dict(status_code=101, close_code=1011, upgraded=True),
    dict(attempt=2, final=False),
    dict(attempt=3, final=True),
    dict(attempt=1, final=False),
    dict(duration_seconds=0.0),
    dict(duration_seconds=-0.0),
    dict(duration_seconds=12.34565),
    dict(duration_seconds=0.00025),
    dict(duration_seconds=float("nan")),
    dict(duration_seconds=float("inf")),
    dict(duration_seconds=3e10),
    dict(evidence=Evidence()),
    dict(evidence=Evidence(detail="", hint="")),
    dict(evidence=Evidence(detail="refused", hint="the route may be missing")),
    dict(evidence=Evidence(detail="step 2 failed", step=2, step_name="connect")),
    dict(evidence=Evidence(detail="step 0", step=0)),
    dict(evidence=Evidence(detail="unnamed", step=3, step_name="")),
    dict(evidence=Evidence(detail='quotes " and \\ and \t tab and\nnewline, CRLF\r\n')),
    dict(evidence=Evidence(detail="non-ASCII é – ✓ 😀 \u2028", hint="naïve")),
    dict(evidence=Evidence(detail="x" * 4000)),  # within LOG_VALUE_CHARS alone, not with the rest
    dict(evidence=Evidence(detail="y" * 3800)),  # within it with the rest
    dict(evidence=Evidence(detail="z" * 20_000)),
    dict(evidence=Evidence(detail="\x1b[2J\x1b]0;pwned\x07 clear screen")),
    dict(evidence=Evidence(detail="lone CR\rhere")),
    dict(evidence=Evidence(detail="bidi \u202e override")),
    dict(evidence=Evidence(detail=f"token {SECRET} leaked")),
    dict(evidence=Evidence(detail="ok", hint=f"hint with {SECRET}")),
    dict(target=f"http://127.0.0.1/{SECRET}"),
    dict(probe=f"p-{SECRET}"),
    dict(variant=SECRET),
    dict(trace_id=f"{SECRET}0000", span_id="b7ad6b7169203331"),
    dict(evidence=Evidence(detail="split secret " + SECRET[:10]), trace_id=SECRET[10:]),
    dict(target="http://h/\x1b[31m"),
    dict(status_code=True),  # not an int the way the encoder sees it: the chain writes it
]


def _compare(results: list[Result], redactor: Redactor, clock: _Frozen,
             level: int = logging.INFO) -> tuple[int, int]:
    """Every result written by the sink and by the chain at each instant: equal lines.
    Returns how many lines the sink made itself and how many it left to the chain."""
    mine, theirs = io.StringIO(), io.StringIO()
    made = [0, 0]
    real_line = log_module._RunLines.line

    def counting(self: Any, result: Result, lvl: int) -> str | None:
        line = real_line(self, result, lvl)
        made[line is None] += 1
        return line

    sink = RunLog()
    for instant in INSTANTS:
        clock.at(instant)
        for r in results:
            configure_logging(redactor, stream=mine, json=True, level=level)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(log_module._RunLines, "line", counting)
                sink.observe(r)
            configure_logging(redactor, stream=theirs, json=True, level=level)
            log_result(r)  # structlog.get_logger and the whole chain
            assert mine.getvalue() == theirs.getvalue(), r
    return made[0], made[1]


def test_every_outcome_and_field_is_written_as_the_chain_writes_it(clock: _Frozen) -> None:
    results = [_result(outcome, **shape) for outcome in Outcome for shape in SHAPES]
    for redactor in (Redactor(), Redactor([SECRET])):
        mine, chain = _compare(results, redactor, clock)
        # Both ways taken, many times: most shapes made here, the rest by the chain.
        assert mine > len(results) and chain >= len(INSTANTS) * len(Outcome) * 5


def test_a_secret_or_control_character_anywhere_never_reaches_the_stream(
        clock: _Frozen) -> None:
    stream = io.StringIO()
    configure_logging(Redactor([SECRET]), stream=stream, json=True)
    sink = RunLog()
    clock.at(INSTANTS[0])
    for shape in SHAPES:
        sink.observe(_result(Outcome.UNEXPECTED_STATUS, **shape))
    out = stream.getvalue()
    assert SECRET not in out and REDACTED in out
    assert not any(c in out for c in "\x1b\x07\r\u202e")
    assert len(out.splitlines()) == len(SHAPES)


def test_the_words_of_a_line_redacted_when_they_are_secrets(clock: _Frozen) -> None:
    """Secrets that are the line's own words (the level, the outcome, the kind, the event):
    absurd, but a secret is never written, even there."""
    results = [_result(o, **shape) for o in (Outcome.SUCCESS, Outcome.TIMEOUT)
               for shape in SHAPES[:8]]
    for words in (["info"], ["warning"], ["success"], ["http"], ["probe_run"], ["2026-12"]):
        _compare(results, Redactor(words), clock)


@pytest.mark.parametrize("level", [logging.DEBUG, logging.WARNING, logging.ERROR])
def test_the_level_filter_drops_what_the_chain_would(level: int, clock: _Frozen) -> None:
    results = [_result(o, **shape) for o in Outcome for shape in SHAPES[:4]]
    _compare(results, Redactor(), clock, level)


def test_a_secret_learnt_after_a_head_was_made_is_redacted_from_then_on(
        clock: _Frozen) -> None:
    """A probe's head is remembered for the redactor's pattern: a new secret or a new token
    (the target's path, say) makes it again."""
    redactor = Redactor()
    stream = io.StringIO()
    configure_logging(redactor, stream=stream, json=True)
    sink = RunLog()
    clock.at(INSTANTS[0])
    run = _result(Outcome.SUCCESS, target="http://h/tok-abcdef123456/x")
    sink.observe(run)
    assert "tok-abcdef123456" in stream.getvalue()
    redactor.add_token("login", "tok-abcdef123456")
    sink.observe(run)
    redactor.add("HTTP 200 in 1ms")
    sink.observe(run)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["target"] == run.target
    assert second["target"] == f"http://h/{REDACTED}/x" and "tok-" not in json.dumps(second)
    assert third["detail"] == REDACTED


def test_a_reload_lets_go_of_the_heads_of_probes_gone_and_a_changed_target_shows(
        clock: _Frozen, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure_logging(Redactor(), stream=stream, json=True)
    sink = RunLog()
    clock.at(INSTANTS[0])
    for i in range(5):
        sink.observe(_result(Outcome.SUCCESS, probe=f"p{i}"))
    lines = sink._lines
    assert lines is not None and len(lines._heads) == 5
    sink.configure(load_text("probes:\n  - name: p0\n    http: {url: 'http://h/'}\n"))
    assert not lines._heads  # made again as runs come
    sink.observe(_result(Outcome.SUCCESS, probe="p0", target="http://other/"))
    assert json.loads(stream.getvalue().splitlines()[-1])["target"] == "http://other/"
    sink.observe(_result(Outcome.SUCCESS, probe="p0", target="http://third/", type="sse"))
    last = json.loads(stream.getvalue().splitlines()[-1])
    assert (last["target"], last["type"]) == ("http://third/", "sse")
    # However many run names come, the heads kept are bounded.
    monkeypatch.setattr(log_module, "RUN_HEADS", 3)
    for i in range(10):
        sink.observe(_result(Outcome.SUCCESS, probe=f"q{i}"))
        assert len(lines._heads) <= 3
    assert [json.loads(x)["probe"] for x in stream.getvalue().splitlines()[-10:]] == [
        f"q{i}" for i in range(10)]


def test_the_console_and_a_capturing_chain_get_the_event_itself() -> None:
    """Only the JSON chain of configure_logging is stood in for: the console renderer and a
    chain changed in place (structlog's capture_logs) get the run's fields."""
    sink = RunLog()
    stream = io.StringIO()
    configure_logging(Redactor(), stream=stream, json=False)
    sink.observe(_result(Outcome.SUCCESS))
    assert sink._lines is None and "probe_run" in stream.getvalue()
    configure_logging(Redactor(), stream=stream, json=True)
    with structlog.testing.capture_logs() as captured:
        sink.observe(_result(Outcome.TIMEOUT))
        assert sink._lines is None
    sink.observe(_result(Outcome.SUCCESS))
    assert sink._lines is not None
    assert captured[0]["outcome"] == "timeout" and captured[0]["trace_id"]


def test_the_clock_writes_what_the_stamper_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run log's clock, remembering the second, against _timestamp at the same ns:
    across second boundaries, microsecond 0 and 999,999, a clock going back."""
    ns = [0]
    frozen_ns = ns

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            second, rest = divmod(frozen_ns[0], 10**9)
            return cls.fromtimestamp(second, tz).replace(microsecond=rest // 1000)

    monkeypatch.setattr(log_module, "datetime", Frozen)
    monkeypatch.setattr(log_module, "time_ns", lambda: ns[0])
    clock = log_module._Clock()
    start = int(dt.datetime(2026, 12, 31, 23, 59, 58, tzinfo=dt.UTC).timestamp()) * 10**9
    rng = random.Random(24)
    steps = [0, 1, 999, 1000, 999_999_999, 1, 10**9, 10**9 - 1, -5 * 10**9, 3 * 10**9]
    steps += [rng.randrange(0, 3 * 10**9) for _ in range(2000)]
    at = start
    for step in steps:
        at += step
        ns[0] = at
        assert clock.stamp() == log_module._timestamp(None, "info", {})["timestamp"], at


def test_the_duration_is_what_the_encoder_writes_of_the_rounded_float() -> None:
    rng = random.Random(24)
    values = [0.0, -0.0, 5e-324, 0.00005, 0.00015, 0.00025, -0.00004, 0.1, 1 / 3, 2.0**40 / 1000,
              2.0**40 / 1000 * (1 - 1e-15), 1e300, -1e300, float("inf"), float("-inf"),
              float("nan")]
    for _ in range(20_000):
        values.append(rng.random() * rng.choice([1e-4, 1e-3, 1, 60, 1e6]))
        values.append((rng.randrange(100_000) + rng.choice([0.05, 0.15, 0.25, 0.35])) / 1000)
        values.append(rng.uniform(-1, 1) * 10.0 ** rng.randrange(-300, 300))
    for v in values:
        assert log_module._duration_ms(v) == json.dumps(round(v * 1000, 1)), v
    assert log_module._duration_ms(3) is None  # an int: the chain writes it
