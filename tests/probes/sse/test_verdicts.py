"""The stream's verdicts as pure functions: a head, a timeline and how reading ended in,
an outcome, its words and a hint out. One table over every End and budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from monitor.config.schema.sse import SseSpec
from monitor.outcomes import Outcome
from monitor.probes.sse.verdicts import End, Timeline, answer_phrase, judge_head, judge_stream


def spec(**kw: Any) -> SseSpec:
    return SseSpec.model_validate({"url": "http://example.test/s", **kw})


BUDGETS = {"first_event_within": 1.0, "max_gap": 1.0, "done": "[DONE]"}


@dataclass(frozen=True)
class Row:
    name: str
    kw: dict[str, Any]
    t: Timeline
    end: End
    outcome: Outcome
    words: str
    gzip: bool = False


def tl(count: int, first: float | None, last: float | None, **kw: Any) -> Timeline:
    return Timeline(count=count, first=first, last=last, **kw)


ROWS = [
    Row("done in time", BUDGETS, tl(5, 0.2, 0.6, max_gap=0.1, done_seen=True), End.DONE,
        Outcome.SUCCESS, "5 events, first after 200ms, largest gap 100ms"),
    Row("nothing at all", BUDGETS, tl(0, None, None, end_at=5.0), End.TIMEOUT,
        Outcome.STREAM_STALLED, "no first event within first_event_within"),
    Row("late, then one burst", BUDGETS, tl(9, 2.0, 2.03, done_seen=True), End.DONE,
        Outcome.STREAM_BUFFERED, "then all 9 events at once"),
    Row("late burst, gzip", BUDGETS, tl(9, 2.0, 2.03), End.EOF, Outcome.STREAM_BUFFERED,
        "at once", gzip=True),
    Row("late, then paced", BUDGETS, tl(9, 2.0, 2.8, max_gap=0.1, done_seen=True), End.DONE,
        Outcome.STREAM_STALLED, "the first event came after 2000ms"),
    Row("late burst that never ends", BUDGETS, tl(3, 2.0, 2.01), End.TIMEOUT,
        Outcome.STREAM_STALLED, "first event came after"),
    Row("silence mid-way", BUDGETS, tl(3, 0.1, 0.3), End.GAP, Outcome.STREAM_STALLED,
        "silent for more than max_gap"),
    Row("cut", BUDGETS, tl(3, 0.1, 0.3), End.CUT, Outcome.STREAM_INCOMPLETE,
        "cut mid-body before [DONE]"),
    Row("clean end before done", BUDGETS, tl(3, 0.1, 0.3), End.EOF, Outcome.STREAM_INCOMPLETE,
        "ended before [DONE]"),
    Row("clean end, nothing", {}, tl(0, None, None), End.EOF, Outcome.STREAM_INCOMPLETE,
        "before its first event"),
    Row("clean end without done", {}, tl(4, 0.1, 0.4), End.EOF, Outcome.SUCCESS, "4 events"),
    Row("done before the expected events", BUDGETS,
        tl(3, 0.1, 0.3, events_missing="message_stop", done_seen=True), End.DONE,
        Outcome.STREAM_INCOMPLETE, "came before the expected events: message_stop"),
    Row("events timeout", BUDGETS, tl(3, 0.1, 0.3, events_missing="b"), End.EVENTS_TIMEOUT,
        Outcome.MESSAGE_TIMEOUT, "still missing after events.timeout: b"),
    Row("timeout waiting for done", BUDGETS, tl(3, 0.1, 0.3), End.TIMEOUT, Outcome.TIMEOUT,
        "[DONE] did not come"),
    Row("an endless healthy stream", {"max_gap": 1.0}, tl(30, 0.1, 4.9, max_gap=0.2),
        End.TIMEOUT, Outcome.SUCCESS, "still streaming at the timeout"),
    Row("expected events complete", {"max_gap": 1.0}, tl(3, 0.1, 0.3), End.COMPLETE,
        Outcome.SUCCESS, "3 events"),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_judge_stream(row: Row) -> None:
    judged = judge_stream(spec(**row.kw), row.t, row.end, gzip=row.gzip)
    assert judged.outcome is row.outcome
    assert row.words in judged.detail
    if row.outcome is not Outcome.SUCCESS and row.outcome is not Outcome.MESSAGE_TIMEOUT:
        assert judged.hint, "every failing stream outcome says what it means"
    if row.gzip:
        assert judged.hint is not None and "gzip" in judged.hint


def test_over_budget_is_slow() -> None:
    judged = judge_stream(spec(done="[DONE]"), tl(3, 0.1, 0.3, done_seen=True), End.DONE,
                          budget_words="the stream took 3000 ms, over the max_latency")
    assert judged.outcome is Outcome.SLOW and "max_latency" in judged.detail


@pytest.mark.parametrize(("status", "ctype", "outcome", "hint"), [
    (200, "text/event-stream; charset=utf-8", None, None),
    (200, "application/json", Outcome.NOT_EVENT_STREAM, "JSON answer"),
    (200, "text/html", Outcome.NOT_EVENT_STREAM, "HTML page"),
    (200, None, Outcome.NOT_EVENT_STREAM, "not an event stream"),
    (429, "application/json", Outcome.UNEXPECTED_STATUS, "rate limited"),
    (503, "text/event-stream", Outcome.UNEXPECTED_STATUS, "not ready"),
    (401, "application/json", Outcome.UNEXPECTED_STATUS, "credentials"),
    (500, "text/plain", Outcome.UNEXPECTED_STATUS, "backend failed"),
])
def test_judge_head(status: int, ctype: str | None, outcome: Outcome | None,
                    hint: str | None) -> None:
    judged = judge_head(spec(), status, ctype, None)
    if outcome is None:
        assert judged is None
        return
    assert judged is not None and judged.outcome is outcome
    assert hint is not None and judged.hint is not None and hint in judged.hint


def test_answer_phrase() -> None:
    assert answer_phrase(200, "text/event-stream", tl(3, 0.1, None, max_gap=0.05)) == \
        "HTTP 200 text/event-stream: 3 events, first after 100ms, largest gap 50ms"
    assert answer_phrase(200, "application/json", None) == \
        "HTTP 200 application/json, not a stream"
    assert answer_phrase(None, None, None) == "no HTTP answer"


@pytest.mark.parametrize(("kw", "problem"), [
    ({"first_event_within": "5s", "timeout": "5s"}, "first_event_within (5s) must be"),
    ({"max_gap": "6s", "timeout": "5s"}, "max_gap (6s) must be shorter"),
    ({"done": " "}, "must not be empty"),
])
def test_budgets_are_checked_at_load(kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        spec(**kw)
