"""The stream probe against the simulator's streams, in every mode: each regression ends
in its own outcome, with a hint and the evidence the contract names; the healthy streams
(OpenAI-style and typed events) pass with their timings measured."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.config import Probe, load_text
from monitor.demo.simulator import RunningSimulator
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe

CHAT = """
probes:
  - name: chat-stream
    timeout: 5s
    sse:
      url: {url}/v1/chat/completions
      method: POST
      json_body: {{model: staging, stream: true, messages: [{{role: user, content: ping}}]}}
      first_event_within: 1s
      max_gap: 1500ms
      events:
        field: [event, data.object]
        types: [chat.completion.chunk]
        count: {{chat.completion.chunk: {{min: 2}}}}
      done: "[DONE]"
"""

AGENT = """
probes:
  - name: agent-stream
    timeout: 5s
    sse:
      url: {url}/api/agent/stream
      first_event_within: 1s
      max_gap: 1500ms
      events:
        types: [message_start, content_block_delta, message_stop]
        count: {{content_block_delta: 2}}
        fail_on: [error]
"""


def probe(template: str, url: str) -> Probe:
    return load_text(template.format(url=url), env={}).probes[0]


@dataclass(frozen=True)
class Case:
    mode: str
    outcome: Outcome
    words: str  # in the detail
    hint: str | None = None  # in the hint


CHAT_CASES = [
    Case("healthy", Outcome.SUCCESS, "10 events"),
    Case("stream_json", Outcome.NOT_EVENT_STREAM, "application/json instead of",
         "JSON answer where a stream"),
    Case("stream_silent", Outcome.STREAM_STALLED, "no first event within", "then nothing"),
    Case("stream_gap", Outcome.STREAM_STALLED, "silent for more than max_gap",
         "stopped mid-way"),
    Case("stream_cut", Outcome.STREAM_INCOMPLETE, "cut mid-body before [DONE]",
         "without a proper end"),
    Case("stream_malformed", Outcome.UNEXPECTED_MESSAGE, "data is not JSON", "JSON events"),
    Case("stream_buffered", Outcome.STREAM_BUFFERED, "then all 10 events at once",
         "held back"),
    Case("rate_limited_429", Outcome.UNEXPECTED_STATUS, "HTTP 429", "rate limited"),
    Case("not_ready_503", Outcome.UNEXPECTED_STATUS, "HTTP 503", "not ready"),
]


@pytest.mark.both_loops
@pytest.mark.parametrize("case", CHAT_CASES, ids=lambda c: c.mode)
async def test_every_stream_mode_has_its_outcome(case: Case, sim: RunningSimulator,
                                                 ctx: ProbeContext) -> None:
    sim.sim.mode = case.mode
    result = await run_probe(probe(CHAT, sim.url), ctx)
    ev = result.evidence
    assert result.outcome is case.outcome, ev.detail
    assert case.words in ev.detail
    if case.hint is not None:
        assert ev.hint is not None and case.hint in ev.hint
    assert result.type == "sse" and result.status_code in (200, 429, 503)
    if case.outcome is Outcome.UNEXPECTED_STATUS:
        assert ev.retry_after is not None  # kept from the 429 and the 503
    if case.outcome is Outcome.NOT_EVENT_STREAM:
        assert ev.body_excerpt is not None and "overloaded" in ev.body_excerpt
    assert result.duration_seconds < 5.5


async def test_healthy_chat_stream_evidence(sim: RunningSimulator, ctx: ProbeContext) -> None:
    result = await run_probe(probe(CHAT, sim.url), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.measure("events") == 10.0  # 9 chunks and [DONE]
    first = result.measure("first_event_seconds")
    assert first is not None and 0 < first < 1.0
    gap = result.measure("max_gap_seconds")
    assert gap is not None and 0.03 < gap < 1.0  # paced 50 ms apart
    assert [e.event for e in result.events] == ["chat.completion.chunk"]
    assert [f.kind for f in result.transcript][:2] == ["data", "data"]
    assert "[DONE]" in result.transcript[-1].data
    assert dict(result.phases)["transfer"] > 0.3
    assert result.evidence.content_type == "text/event-stream"


async def test_typed_events_with_heartbeats(sim: RunningSimulator, ctx: ProbeContext) -> None:
    result = await run_probe(probe(AGENT, sim.url), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert [e.event for e in result.events] == ["message_start", "content_block_delta",
                                                "message_stop"]
    assert result.measure("comments") == 1.0  # the heartbeat: not an event
    assert {f.kind for f in result.transcript} >= {"message_start", "message_stop"}


async def test_a_typed_stream_cut_short_is_incomplete(sim: RunningSimulator,
                                                      ctx: ProbeContext) -> None:
    sim.sim.mode = "stream_cut"
    result = await run_probe(probe(AGENT, sim.url), ctx)
    assert result.outcome is Outcome.STREAM_INCOMPLETE
    assert "expected events" in result.evidence.detail


def test_buffered_and_slow_start_are_told_apart() -> None:
    """A first event late then paced events is a stall; every event in one burst is a
    buffered release (see tests/probes/sse/test_verdicts.py for the table)."""
    from monitor.probes.sse.verdicts import End, Timeline, judge_stream

    spec = load_text(CHAT.format(url="http://x.test"), env={}).probes[0].spec.sse
    assert spec is not None
    burst = Timeline(count=10, first=2.0, last=2.05, end_at=2.05, done_seen=True)
    paced = Timeline(count=10, first=2.0, last=2.5, max_gap=0.05, end_at=2.5, done_seen=True)
    assert judge_stream(spec, burst, End.DONE).outcome is Outcome.STREAM_BUFFERED
    assert judge_stream(spec, paced, End.DONE).outcome is Outcome.STREAM_STALLED




async def test_a_hold_set_by_the_switch_is_buffered_within_a_compressed_timeout(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    """The time-compressed alerting test's case (tests/alerting/stack.py): a first-event
    budget and a timeout a twentieth of the shipped ones, and a hold between them."""
    compressed = CHAT.replace("timeout: 5s", "timeout: 1s").replace(
        "first_event_within: 1s", "first_event_within: 300ms")
    sim.sim.mode = "stream_buffered"
    sim.sim.stream_hold = 0.4
    result = await run_probe(probe(compressed, sim.url), ctx)
    assert result.outcome is Outcome.STREAM_BUFFERED, result.evidence.detail
    assert "then all 10 events at once" in result.evidence.detail
    assert result.duration_seconds < 1.0
