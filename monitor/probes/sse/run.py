"""One stream run: the request (:mod:`monitor.probes.request`, as ``http`` sends it, plus
``Accept: text/event-stream``), its head judged, then the body read as it arrives, parsed
(:mod:`.parser`) and each event judged on arrival (:mod:`.verdicts`, and the shared
:class:`~monitor.probes.events.EventMatcher` for ``events``).

Every wait is bounded by the nearest of: the first event's budget (past it, reading goes
on to tell a buffered stream from a stalled one), the silence allowed after the last
event, the expected events' timeout, and the stream's own timeout. gzip is decoded as it
arrives (aiohttp inflates each chunk it reads). The run never raises: every failure is one
outcome with evidence, built by :func:`~monitor.probes.record.build_result`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from monitor.config import Probe
from monitor.config.schema.sse import STREAM_STEP, SseSpec
from monitor.durations import ms
from monitor.jsontext import loads
from monitor.keep import Keeper
from monitor.limits import EXCERPT_BYTES, REDACT_MARGIN
from monitor.outcomes import Outcome
from monitor.probes.answer import Answer, OnAnswer
from monitor.probes.context import ProbeContext
from monitor.probes.errors import request_failure
from monitor.probes.events import EventMatcher, Seen
from monitor.probes.net.phases import PhaseTimer
from monitor.probes.net.watch import watching
from monitor.probes.record import Found, Measured, Verdict, build_result
from monitor.probes.request import NO_TIMEOUT, prepare
from monitor.probes.sse.parser import Event, Parser, TooLarge
from monitor.probes.sse.verdicts import End, Timeline, judge_head, judge_stream
from monitor.probes.tls import cert_expiry
from monitor.probes.transcript import Transcript
from monitor.result import EventTiming, Result, StepTiming

STREAM_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
# The start of a body that is not a stream: enough for its redacted excerpt.
BODY_READ = EXCERPT_BYTES + REDACT_MARGIN
# Past the stream's own deadline, the time its reading has to stop and say why.
CLOSE_GRACE = 0.2


@dataclass(slots=True)
class Stream:
    """What one run has seen so far, kept for the result however it ends."""

    spec: SseSpec
    t_request: float = 0.0  # loop time the request was sent: every offset is from here
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    stage: str = "auth"
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: bytes | None = None  # a body that was not a stream, for evidence
    token: str | None = None
    count: int = 0
    first: float | None = None  # seconds from the request to the first event
    last: float | None = None  # ... to the latest
    max_gap: float = 0.0
    done_seen: bool = False
    last_event: Event | None = None
    seen: Seen | None = None  # the event types, when no events are expected (kept)
    matcher: EventMatcher | None = None
    transcript: Transcript | None = None
    comments: int = 0
    opened: bool = False  # the head was a stream: the timeline is the evidence
    # A flow step's values (ProbeContext.answered): the head, then the events that matched.
    answered: OnAnswer | None = None

    def where(self) -> str:
        return self.timer.stage if self.stage == "request" else self.stage


class Stop(Exception):
    """Reading stopped early with a verdict of its own (a failing event, a refused one)."""

    def __init__(self, outcome: Outcome, detail: str, hint: str | None = None) -> None:
        super().__init__(detail)
        self.outcome, self.detail, self.hint = outcome, detail, hint


async def run_sse(probe: Probe, ctx: ProbeContext) -> Result:
    spec = probe.spec.sse
    assert isinstance(spec, SseSpec), "run_probe dispatches only sse probes here"
    loop = asyncio.get_running_loop()
    started_at = time.time()
    t0 = loop.time()
    bound = probe.timeout if spec.timeout is None else min(spec.timeout, probe.timeout)
    stream = Stream(spec=spec)
    outcome: Outcome
    hint: str | None = None
    try:
        # The reading's own bounds end at t0 + bound, each with its verdict; this one only
        # catches what has none (a token, a connect, headers that never come).
        async with asyncio.timeout_at(t0 + bound + CLOSE_GRACE):
            outcome, detail, hint = await _exchange(probe, spec, ctx, stream, t0 + bound)
    except Stop as stop:
        outcome, detail, hint = stop.outcome, stop.detail, stop.hint
    except Exception as exc:
        outcome, detail, hint = request_failure(exc, stream.where(), bound, "the timeout",
                                                stream.timer.unparsable)
    return _result(probe, ctx, stream, Verdict(
        outcome, detail, status_code=stream.status, headers=stream.headers,
        content_type=stream.content_type, body=stream.body, hint=hint),
        started_at, loop.time() - t0)


async def _exchange(probe: Probe, spec: SseSpec, ctx: ProbeContext, stream: Stream,
                    deadline: float) -> tuple[Outcome, str, str | None]:
    credential = await ctx.tokens.credential(probe, ctx.session, ctx.trace)
    request = prepare(spec, credential, ctx.trace, defaults=STREAM_HEADERS)
    stream.token = request.token
    stream.stage = "request"
    loop = asyncio.get_running_loop()
    with watching(stream.timer):
        stream.t_request = loop.time()
        async with ctx.session.request(
            request.method, request.url, headers=request.headers, allow_redirects=False,
            ssl=request.tls, server_hostname=request.server_hostname, timeout=NO_TIMEOUT,
            **request.body,
        ) as resp:
            stream.timer.receiving()  # the timer is the run's watcher (net/session.py)
            stream.status = resp.status
            stream.headers = tuple(resp.headers.items())
            ctx.answered(Answer(headers=stream.headers))  # a flow step's header values
            ctype = resp.headers.get("Content-Type")
            stream.content_type = None if ctype is None else sys.intern(ctype)
            head = judge_head(spec, resp.status, ctype, resp.headers.get("Content-Encoding"))
            if head is not None:
                stream.body = await _excerpt(resp, deadline)
                resp.close()
                stream.timer.finish()
                return head.outcome, head.detail, head.hint
            stream.opened = True
            try:
                end = await _read(spec, ctx, resp, stream, deadline)
            finally:
                resp.close()
                stream.timer.finish()
    gzip = "gzip" in (resp.headers.get("Content-Encoding") or "").lower()
    timeline = _timeline(stream, loop.time())
    total = loop.time() - stream.t_request
    over = ""
    if spec.max_latency is not None and total > spec.max_latency:
        over = f"the stream took {ms(total)}, over the max_latency of {ms(spec.max_latency)}"
    judged = judge_stream(spec, timeline, end, gzip=gzip, budget_words=over)
    return judged.outcome, judged.detail, judged.hint


async def _excerpt(resp: aiohttp.ClientResponse, deadline: float) -> bytes:
    """The start of a body that is not a stream, bounded in size and by the deadline."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            while size < BODY_READ:
                chunk = await resp.content.read(BODY_READ - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        pass  # what came is the evidence; the verdict is the head's
    return b"".join(chunks)


def _timeline(stream: Stream, now: float) -> Timeline:
    matcher = stream.matcher
    missing = matcher.still() if matcher is not None and not matcher.complete else ""
    return Timeline(count=stream.count, first=stream.first, last=stream.last,
                    max_gap=stream.max_gap, end_at=now - stream.t_request,
                    events_missing=missing, done_seen=stream.done_seen)


def begin(stream: Stream, keep: Keeper, answered: OnAnswer | None) -> Parser:
    """Ready ``stream`` to note its events (kept by ``keep`` as they arrive, bounded:
    monitor.keep, monitor.limits); the parser its chunks go through."""
    spec = stream.spec
    stream.transcript = Transcript(keep, stream.t_request)
    stream.answered = answered
    if spec.events is not None:
        stream.matcher = EventMatcher(spec.events, STREAM_STEP, keep=keep)
    else:  # the matcher notes what each event was when there is one
        stream.seen = Seen(keep)
    return Parser(spec.max_event_bytes)


async def _read(spec: SseSpec, ctx: ProbeContext, resp: aiohttp.ClientResponse,
                stream: Stream, deadline: float) -> End:
    """Read and judge the stream until it ends or a bound runs out; how it ended."""
    loop = asyncio.get_running_loop()
    t_req = stream.t_request
    # on_answer: a flow step's, None outside a flow (then no Answer is built per event).
    parser = begin(stream, Keeper(ctx.redactor), ctx.on_answer)
    first_by = None if spec.first_event_within is None else t_req + spec.first_event_within
    events_by = None
    if spec.events is not None and spec.events.timeout is not None:
        events_by = min(deadline, t_req + spec.events.timeout)
    late = False  # the first event's budget ran out without one: read on to classify

    def bound() -> tuple[float, End | None]:
        """The nearest bound now, and what it ends in (None: the first event's budget,
        which only starts the wait for a burst)."""
        bounds: list[tuple[float, End | None]] = [(deadline, End.TIMEOUT)]
        if not late:
            if stream.last is None and first_by is not None:
                bounds.append((first_by, None))
            if stream.last is not None and spec.max_gap is not None:
                bounds.append((stream.last + t_req + spec.max_gap, End.GAP))
            if events_by is not None and stream.matcher is not None \
                    and not stream.matcher.complete:
                bounds.append((events_by, End.EVENTS_TIMEOUT))
        return min(bounds, key=lambda b: b[0])

    content = resp.content
    while True:
        # One timer until the nearest bound, not one per read: when it fires, the bounds
        # are looked at again (an event since has moved the silence's end further).
        until, why = bound()
        if until > loop.time():
            try:
                async with asyncio.timeout_at(until):
                    while True:
                        try:
                            chunk = await content.readany()
                        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError,
                                ConnectionError):
                            return End.CUT
                        end = judge_chunk(spec, stream, parser, chunk, loop.time() - t_req, late)
                        if end is not None:
                            return end
            except TimeoutError:
                until, why = bound()
                if until > loop.time():
                    continue
        if why is None:
            late = True
            continue
        return why


def judge_chunk(spec: SseSpec, stream: Stream, parser: Parser, chunk: bytes, now: float,
           late: bool) -> End | None:
    """Parse one chunk and judge its events, together: they all came at ``now`` (the
    chunk's arrival); an end when reading stops here."""
    if not chunk:
        parser.close()
        stream.comments = parser.comments
        return End.EOF
    try:
        events = parser.feed(chunk)
    except TooLarge as exc:
        raise Stop(Outcome.PROTOCOL_ERROR, f"the stream sent {exc} (max_event_bytes)",
                    "an event this large is not a stream of tokens or progress: the "
                    "endpoint streams something else, or is hostile") from None
    stream.comments = parser.comments
    if not events:
        return None
    # The timeline moves once a chunk: its first event may end a gap, the others add none.
    last = stream.last
    if last is None:
        stream.first = now
    elif now - last > stream.max_gap:
        stream.max_gap = now - last
    stream.last = now
    at = stream.t_request + now
    transcript, seen, matcher, done = stream.transcript, stream.seen, stream.matcher, spec.done
    for event in events:
        stream.count += 1
        stream.last_event = event
        kind, text = event.type, event.data
        if transcript is not None:
            transcript.add("received", kind or "data", text, at)
        if seen is not None:
            seen.add(kind or "(no event field)")
        if done is not None and (text == done or kind == done):
            stream.done_seen = True
            return End.DONE
        if matcher is None:
            if stream.answered is not None:  # no events expected: any event may hold a value
                stream.answered(Answer(body=text))
            continue
        # The expected events: each judged on arrival, inline (a stream's every event).
        data: Any = text
        parsed = True
        try:
            data = loads(text)
        except ValueError:
            parsed = False
        fed = matcher.feed({"event": kind, "data": data, "id": event.id}, now, len(text))
        if fed.matched:
            if stream.answered is not None:  # a flow step's values: the event matched
                stream.answered(Answer(body=text))
        elif fed.outcome is not None:
            raise Stop(fed.outcome, f"event {stream.count}: {fed.detail}")
        elif not parsed:
            _unreadable(stream, matcher, event)
        if done is None and matcher.complete and not late:
            return End.COMPLETE  # late: only done ends it (the verdict tells burst from stall)
    return None


def _unreadable(stream: Stream, matcher: EventMatcher, event: Event) -> None:
    """An event whose data is not JSON, where the expected events are read at a
    ``data.PATH``: raises :class:`Stop`, unless its ``event:`` field typed it."""
    paths = matcher.spec.paths
    if not any(p.startswith("data.") for p in paths):
        return
    if "event" in paths and event.type is not None:
        return
    raise Stop(Outcome.UNEXPECTED_MESSAGE,
               f"event {stream.count}: its data is not JSON, so "
               f"{', '.join(p for p in paths if p.startswith('data.'))} cannot be read",
               "the stream carries something else than the JSON events expected: a "
               "truncated or interleaved chunk, an error as plain text, or another format")


def _result(probe: Probe, ctx: ProbeContext, stream: Stream, verdict: Verdict,
            started_at: float, duration: float) -> Result:
    matcher = stream.matcher
    seen = matcher.seen if matcher is not None else stream.seen
    measures: list[tuple[str, float]] = []
    steps: tuple[StepTiming, ...] = ()
    if stream.opened:
        if stream.first is not None:
            measures.append(("first_event_seconds", stream.first))
        measures += [("max_gap_seconds", stream.max_gap), ("events", float(stream.count)),
                     ("comments", float(stream.comments))]
        steps = (StepTiming(0, STREAM_STEP, stream.last or 0.0),)
    # The messages a failed wait saw, typed only now (a passing stream never pays for it).
    typed, more = matcher.frames_seen() if matcher is not None \
        and verdict.outcome is not Outcome.SUCCESS else ([], 0)
    found = Found(
        step=0 if stream.opened and verdict.outcome is not Outcome.SUCCESS else None,
        step_name=STREAM_STEP if stream.opened and verdict.outcome is not Outcome.SUCCESS
        else None,
        last_message=None if stream.last_event is None else stream.last_event.data,
        events_seen=tuple(seen.kept) if seen is not None else (),
        events_seen_omitted=seen.omitted if seen is not None else 0,
        frames_seen=tuple(typed), frames_seen_omitted=more,
        hint=matcher.hint() if matcher is not None and verdict.outcome in (
            Outcome.MESSAGE_TIMEOUT, Outcome.STREAM_INCOMPLETE, Outcome.UNEXPECTED_MESSAGE)
        else None)
    frames, omitted = stream.transcript.frames() if stream.transcript is not None else ((), 0)
    measured = Measured(
        started_at=started_at, duration_seconds=duration,
        phases=stream.timer.phases() if stream.stage == "request" else (),
        steps=steps,
        events=tuple(EventTiming(STREAM_STEP, e, at) for e, at in matcher.timings)
        if matcher is not None else (),
        matches=tuple(matcher.matches) if matcher is not None else (),
        duplicates=tuple(matcher.duplicates.items()) if matcher is not None else (),
        transcript=frames, transcript_omitted=omitted, measures=tuple(measures),
        cert_expiry=cert_expiry(stream.timer.peer_cert), token=stream.token)
    return build_result(probe, ctx, verdict, measured, found)


__all__ = ["STREAM_HEADERS", "Stop", "Stream", "begin", "judge_chunk", "run_sse"]
