"""The ``sse`` kind as the rest of synthmon sees it: its runner, its phases (an HTTP
request's: ``transfer`` is the stream), its gauges and histogram, its span (the events as
span events) and how its answer is put in words."""

from __future__ import annotations

from monitor.outcomes import Outcome
from monitor.probes.http.kind import PHASE_GAUGE, STATUS_GAUGE
from monitor.probes.kind import NOT_RUN, Gauge, Histogram, ProbeKind, SpanEvent, SpanValue, Wording
from monitor.probes.net.phases import HTTP_PHASES
from monitor.probes.sse.run import run_sse
from monitor.probes.sse.verdicts import Timeline, answer_phrase
from monitor.result import Result

# Time to first token is an SLO of seconds; an agent's first progress event, of minutes.
FIRST_EVENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0,
                       120.0)


def _timeline(r: Result) -> Timeline | None:
    count = r.measure("events")
    if count is None:
        return None
    first = r.measure("first_event_seconds")
    return Timeline(count=int(count), first=first, last=None,
                    max_gap=r.measure("max_gap_seconds") or 0.0)


def answer(r: Result) -> str | None:
    if r.outcome is Outcome.CONFIG_ERROR:
        return NOT_RUN + ": nothing was sent"
    return answer_phrase(r.status_code, r.evidence.content_type, _timeline(r))


def span_attributes(r: Result) -> dict[str, SpanValue]:
    attrs: dict[str, SpanValue] = {}
    for key, name in (("events", "synthmon.sse.events"),
                      ("first_event_seconds", "synthmon.sse.first_event_seconds"),
                      ("max_gap_seconds", "synthmon.sse.max_gap_seconds")):
        value = r.measure(key)
        if value is not None:
            attrs[name] = int(value) if key == "events" else value
    return attrs


def span_events(r: Result) -> tuple[SpanEvent, ...]:
    """The events of the transcript (the first TRANSCRIPT_FRAMES), where they came."""
    return tuple(SpanEvent("sse.event", f.offset_ms / 1000,
                           {"sse.event.type": f.kind, "sse.event.size": f.size})
                 for f in r.transcript)


KIND = ProbeKind(
    name="sse",
    runner=run_sse,
    phases=HTTP_PHASES,
    gauges=(
        STATUS_GAUGE,
        PHASE_GAUGE,
        Gauge("probe_sse_first_event_seconds",
              "from the request to the first event of the last run (absent: none came)",
              lambda r: r.measure("first_event_seconds")),
        Gauge("probe_sse_max_gap_seconds", "the longest silence between two events of the "
              "last run", lambda r: r.measure("max_gap_seconds")),
        Gauge("probe_sse_events", "events the last run received",
              lambda r: r.measure("events")),
    ),
    histograms=(Histogram("synthmon_probe_first_event_seconds",
                          "from the request to a stream's first event (time to first token)",
                          "first_event_seconds", FIRST_EVENT_BUCKETS),),
    span_attributes=span_attributes,
    span_events=span_events,
    words=Wording("SSE", "stream", answer),
)

__all__ = ["FIRST_EVENT_BUCKETS", "KIND", "answer", "span_attributes", "span_events"]
