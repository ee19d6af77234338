"""How a stream probe decides, from plain values only: the answer's head (status, content
type), then the stream's timeline (when each event came, how it ended) against the budgets,
each outcome with a hint in plain words. No sockets, no clock; table-tested
(tests/probes/sse/test_verdicts.py).

``stream_buffered`` and a slow first event are told apart by what came after the first
event's budget ran out: every remaining event in one burst (100 ms or less from first to
last) and then the end of the stream is a stream held back by something in between and
released whole; events paced as usual after a late first one are a stall
(``stream_stalled``), however long the wait for the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from monitor.config import status_matches
from monitor.config.schema.sse import SseSpec
from monitor.durations import ms
from monitor.outcomes import Outcome

EVENT_STREAM = "text/event-stream"
# From the first to the last event of a release, at most: one burst.
BURST_SECONDS = 0.1


class End(Enum):
    """How the reading of a stream ended."""

    DONE = "done"  # the ``done`` data or event type came
    COMPLETE = "complete"  # no ``done``: every expected event came
    EOF = "eof"  # the server ended the body cleanly
    CUT = "cut"  # the body ended mid-way (a reset, a chunked body cut short)
    GAP = "gap"  # a silence longer than max_gap after an event in time
    EVENTS_TIMEOUT = "events_timeout"  # events.timeout ran out
    TIMEOUT = "timeout"  # the stream's timeout ran out


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the stream did, in seconds from the request's start."""

    count: int  # events (comments, the heartbeats, are not events)
    first: float | None  # arrival of the first event
    last: float | None  # arrival of the last event (End.GAP: when the silence began)
    max_gap: float = 0.0  # the longest silence between two events (0 with fewer than two)
    end_at: float = 0.0  # when reading stopped
    events_missing: str = ""  # expected events that never came, in words ("" : none)
    done_seen: bool = False


@dataclass(frozen=True, slots=True)
class Judged:
    outcome: Outcome
    detail: str
    hint: str | None = None


def main_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def judge_head(spec: SseSpec, status: int, content_type: str | None,
               content_encoding: str | None) -> Judged | None:
    """The verdict on the answer's head, or None when it opens a stream to read."""
    if not status_matches(status, spec.expect.status):
        return Judged(Outcome.UNEXPECTED_STATUS, f"HTTP {status} instead of a stream "
                      f"(expected {_statuses(spec)})", status_hint(status))
    ctype = main_type(content_type)
    if ctype != EVENT_STREAM:
        shown = ctype or "no content type"
        return Judged(Outcome.NOT_EVENT_STREAM,
                      f"HTTP {status} {shown} instead of {EVENT_STREAM}",
                      not_a_stream_hint(status, ctype))
    return None


def judge_stream(spec: SseSpec, t: Timeline, end: End, *, gzip: bool = False,
                 budget_words: str = "") -> Judged:
    """The verdict on a stream that opened, once reading it stopped."""
    first_budget = spec.first_event_within
    if first_budget is not None and (t.first is None or t.first > first_budget):
        return _late(spec, t, end, first_budget, gzip)
    said = summary(t)
    if end is End.GAP:
        assert spec.max_gap is not None
        gap_at = t.last if t.last is not None else 0.0
        return Judged(Outcome.STREAM_STALLED,
                      f"silent for more than max_gap ({ms(spec.max_gap)}) after "
                      f"{t.count} event{'s' * (t.count != 1)}, from {ms(gap_at)} on; {said}",
                      "the stream stopped mid-way: the backend stalled between two events "
                      "(a stuck tool or model call, a lost upstream), or a proxy's read "
                      "timeout is about to cut it; heartbeat comments do not count as events")
    if end is End.CUT:
        return Judged(Outcome.STREAM_INCOMPLETE,
                      f"the stream was cut mid-body{_before(spec, t)}; {said}",
                      "the connection ended without a proper end of the body: the backend "
                      "crashed or was restarted, or a proxy or load balancer cut a long "
                      "response (an idle or read timeout)")
    if end is End.EOF and (spec.done is not None or t.events_missing or t.count == 0):
        return Judged(Outcome.STREAM_INCOMPLETE,
                      f"the stream ended{_before(spec, t)}; {said}",
                      "the server closed the stream cleanly but early: the backend gave up "
                      "(an error it did not send as an event), or a proxy ended the "
                      "response at a size or time limit")
    if end is End.DONE and t.events_missing:
        return Judged(Outcome.STREAM_INCOMPLETE,
                      f"{spec.done} came before the expected events: {t.events_missing}; "
                      f"{said}",
                      "the backend finished the answer without the events this probe "
                      "waits for: a step of the agent was skipped or failed silently")
    if end is End.EVENTS_TIMEOUT:
        return Judged(Outcome.MESSAGE_TIMEOUT,
                      f"expected events still missing after events.timeout: "
                      f"{t.events_missing or 'none'}; {said}")
    if end is End.TIMEOUT:
        if spec.done is not None:
            return Judged(Outcome.TIMEOUT,
                          f"{spec.done} did not come within the timeout; {said}",
                          "the stream was still open: an answer longer than the timeout "
                          "allows, or a stream that never ends")
        if t.events_missing:
            return Judged(Outcome.MESSAGE_TIMEOUT,
                          f"expected events still missing at the timeout: "
                          f"{t.events_missing}; {said}")
        if t.count == 0:
            return Judged(Outcome.STREAM_STALLED, f"no event within the timeout; {said}",
                          _NOTHING_HINT)
        return Judged(Outcome.SUCCESS, f"still streaming at the timeout; {said}")
    if budget_words:
        return Judged(Outcome.SLOW, f"{said}; {budget_words}")
    return Judged(Outcome.SUCCESS, said)


_NOTHING_HINT = ("200 headers and then nothing: the backend accepted the request but "
                 "produced no event (a stuck model or tool call, a full queue, an upstream "
                 "that never answered)")


def _late(spec: SseSpec, t: Timeline, end: End, budget: float, gzip: bool) -> Judged:
    said = summary(t)
    if t.first is None:
        return Judged(Outcome.STREAM_STALLED,
                      f"no first event within first_event_within ({ms(budget)}), nor after "
                      f"it until {ms(t.end_at)}; {said}", _NOTHING_HINT)
    spread = (t.last if t.last is not None else t.first) - t.first
    ended = end in (End.DONE, End.EOF, End.COMPLETE)
    if ended and spread <= BURST_SECONDS:
        encoding = (" The answer was gzip-encoded: a proxy compressing text/event-stream "
                    "holds it until the end (nginx: gzip_types without "
                    "text/event-stream).") if gzip else ""
        return Judged(Outcome.STREAM_BUFFERED,
                      f"nothing within first_event_within ({ms(budget)}), then all "
                      f"{t.count} event{'s' * (t.count != 1)} at once at {ms(t.first)} "
                      f"({ms(spread)} from first to last); {said}",
                      "the stream was held back by something between the probe and the "
                      "backend and released whole: a buffering proxy, CDN or compression "
                      "middleware; users see nothing until the answer is complete, while "
                      "every health check stays green." + encoding)
    return Judged(Outcome.STREAM_STALLED,
                  f"the first event came after {ms(t.first)}, over first_event_within "
                  f"({ms(budget)}); {said}",
                  "a slow start: the backend took long to produce its first event (model "
                  "or tool latency, a cold start, a queue), then streamed as usual; not "
                  "held back by a proxy, since the events that followed were paced")


def summary(t: Timeline) -> str:
    """``12 events, first after 310 ms, largest gap 120 ms``."""
    if not t.count:
        return "no events"
    parts = [f"{t.count} event{'s' * (t.count != 1)}", f"first after {ms(t.first or 0.0)}"]
    if t.count > 1:
        parts.append(f"largest gap {ms(t.max_gap)}")
    return ", ".join(parts)


def _before(spec: SseSpec, t: Timeline) -> str:
    if spec.done is not None and not t.done_seen:
        return f" before {spec.done}"
    if t.events_missing:
        return f" before the expected events: {t.events_missing}"
    if t.count == 0:
        return " before its first event"
    return ""


def _statuses(spec: SseSpec) -> str:
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in spec.expect.status]
    return ", ".join(parts)


def status_hint(status: int) -> str | None:
    """What a non-stream status means for a stream endpoint."""
    if status == 429:
        return ("429: rate limited; LLM backends limit streams per key and per minute, and "
                "the Retry-After says when to come back")
    if status == 503:
        return "503: not ready or overloaded (a deploy, a readiness gate, no capacity)"
    if status in (401, 403):
        return f"{status}: the credentials were refused or are missing"
    if status == 404:
        return "404: nothing is routed at this path; check the URL and the method"
    if status == 405:
        return "405: the route does not take this method (a stream usually wants POST)"
    if status in (502, 504):
        return (f"{status}: a proxy or gateway in between got no (timely) answer from the "
                "backend")
    if status >= 500:
        return f"{status}: the backend failed before streaming"
    return None


def not_a_stream_hint(status: int, ctype: str) -> str:
    if ctype == "application/json":
        return ("a JSON answer where a stream was expected: an error reported with status "
                f"{status} instead of an error status (look at the body), streaming not "
                "enabled for this request (e.g. stream: true missing), or a gateway "
                "answering for the backend")
    if ctype == "text/html":
        return ("an HTML page where a stream was expected: a login, error or maintenance "
                "page of a proxy or gateway in front of the backend")
    return ("the answer is not an event stream: the endpoint or the request is not the "
            "streaming one, or something in between rewrote the answer")


def answer_phrase(status: int | None, content_type: str | None, t: Timeline | None) -> str:
    """The stream's answer in one phrase, for the status page and the API."""
    if status is None:
        return "no HTTP answer"
    ctype = main_type(content_type)
    what = f"HTTP {status}" + (f" {ctype}" if ctype else "")
    if ctype != EVENT_STREAM or t is None:
        return f"{what}, not a stream"
    return f"{what}: {summary(t)}"


__all__ = ["BURST_SECONDS", "EVENT_STREAM", "End", "Judged", "Timeline", "answer_phrase",
           "judge_head", "judge_stream", "main_type", "not_a_stream_hint", "status_hint",
           "summary"]
