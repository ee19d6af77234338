"""The conversation after the server accepted: the configured steps, the negative probe's
wait to be thrown out, and the close. Each failure is raised as a
:class:`~monitor.probes.websocket.state.Failure`; the decisions are in :mod:`.verdicts`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from monitor.config import ExpectEventsStep, ExpectStep, SendStep, Step
from monitor.durations import ms
from monitor.keep import Keeper
from monitor.limits import YIELD_EVERY
from monitor.outcomes import Outcome
from monitor.probes.answer import Answer
from monitor.probes.deadline import deadline_at
from monitor.probes.events import EventMatcher
from monitor.probes.net.wsconn import TracedConnection
from monitor.probes.refusal import close_reading, got_in
from monitor.probes.websocket.adapter import CLOSE_TIMEOUT
from monitor.probes.websocket.state import Failure, Found, Run
from monitor.probes.websocket.verdicts import (
    Closed,
    Verdict,
    budget_exceeded,
    close_hint,
    close_verdict,
    is_auth_error,
    mismatch,
    parse_json,
)
from monitor.result import EventTiming, Result, StepTiming
from monitor.trace import substitute

# After accept, how long a negative probe waits for the server to throw it out.
REJECTION_GRACE = 2.0
# After an auth error message, how long to wait for the close frame that usually follows,
# so the evidence carries the close code too.
LINGER_FOR_CLOSE = 0.3


async def _recv(run: Run, ws: TracedConnection, until: float) -> str | bytes:
    """The next message; ConnectionClosed and TimeoutError propagate.

    The deadline is checked here as well as by the timer: a message already queued is
    returned without waiting, and a timer only fires while the task waits."""
    until = min(until, run.deadline)
    if run.now() >= until:
        raise TimeoutError
    with deadline_at(until):
        return await ws.recv()


def _closed(run: Run, ws: TracedConnection, exc: ConnectionClosed, where: str) -> Closed:
    return close_verdict(exc.sent, exc.rcvd, exc.rcvd_then_sent, where,
                         flood=ws.trace.flood, max_message_bytes=run.spec.max_message_bytes,
                         before_first_expected=not run.expected_seen)


async def _linger_for_close(run: Run, ws: TracedConnection) -> tuple[int | None, str | None]:
    """After an auth error message, catch the close frame that usually follows: its code
    and reason, or (None, None)."""
    try:
        await _recv(run, ws, run.now() + LINGER_FOR_CLOSE)
    except ConnectionClosed as exc:
        if exc.rcvd is not None:
            return exc.rcvd.code, exc.rcvd.reason or None
    except TimeoutError:
        pass
    return None, None


async def after_accept_negative(run: Run, ws: TracedConnection) -> Result:
    """A negative probe got a 101: success only if the server throws it out right away,
    with a close or message that ``refused_with`` counts as an auth refusal."""
    spec = run.spec
    bypass = tuple(spec.bypass_headers or ())
    grace = min(REJECTION_GRACE, run.remaining())
    start = run.now()
    try:
        message = await _recv(run, ws, start + grace)
    except ConnectionClosed as exc:
        closed = _closed(run, ws, exc, "right after accepting")
        found = Found(close_code=closed.code, close_reason=closed.reason)
        verdict = closed.verdict
        reading = close_reading(closed.code, closed.reason, spec.refused_with) \
            if exc.rcvd is not None else None
        if reading is not None:
            return run.result(Verdict(Outcome.SUCCESS, reading.detail), found)
        if exc.rcvd is not None or closed.code == CloseCode.ABNORMAL_CLOSURE:
            learned = f"close {closed.code} is not an auth refusal (refused_with: " \
                f"{', '.join(map(str, spec.refused_with))}): the probe learned nothing " \
                "about auth"
            verdict = replace(verdict, hint=learned + (f". {verdict.hint}" if verdict.hint
                                                       else ""))
        return run.result(verdict, found)
    except TimeoutError:
        await close(run, ws)
        return run.result(Verdict(
            Outcome.AUTH_NOT_ENFORCED,
            got_in(run.probe.variant, f"the server accepted the connection (101) and did not "
                   f"reject it within {ms(run.now() - start)}", bypass)))
    if isinstance(message, str):
        ok, data = parse_json(message)
        if ok and is_auth_error(data):
            code, reason = await _linger_for_close(run, ws)
            await close(run, ws)
            reading = close_reading(code, reason, spec.refused_with, auth_message=True)
            found = Found(last_message=message, close_code=code, close_reason=reason)
            if reading is None:
                return run.result(Verdict(
                    Outcome.AUTH_REJECTED,
                    "the server sent an auth error message, which refused_with does not "
                    "count (it counts 1008 for it)"), found)
            budget = budget_exceeded(run.spec, run.phases, run.steps,
                                     run.handshake.open_seconds, refused=True)
            verdict = Verdict(Outcome.SLOW, budget) if budget else Verdict(
                Outcome.SUCCESS, "refused as expected: the server accepted the upgrade, then "
                "sent an auth error message")
            return run.result(verdict, found)
    await close(run, ws)
    return run.result(Verdict(
        Outcome.AUTH_NOT_ENFORCED,
        got_in(run.probe.variant, "the server accepted the connection (101) and sent a "
               "message instead of rejecting it", bypass)),
        Found(last_message=message))


async def run_step(run: Run, ws: TracedConnection, index: int, step: Step) -> None:
    """One configured step; raises :class:`Failure`. Its timing is kept either way."""
    label = step.label(index)
    start = run.now()
    try:
        if step.expect is not None:
            await _expect(run, ws, index, label, step.expect)
        elif step.send is not None:
            await _send(run, ws, step.send)
        elif step.expect_events is not None:
            await _expect_events(run, ws, index, label, step.expect_events)
    except ConnectionClosed as exc:
        closed = _closed(run, ws, exc, f"during step {label}")
        raise Failure(closed.verdict, Found(step=index, step_name=label, close_code=closed.code,
                                            close_reason=closed.reason)) from None
    except TimeoutError:
        # Only sends get here: receives turn their timeouts into message_timeout.
        raise Failure(Verdict(Outcome.TIMEOUT, f"step {label} did not finish before the "
                              "probe timeout"), Found(step=index, step_name=label)) from None
    finally:
        run.steps.append(StepTiming(index, label, run.now() - start))


async def _expect(run: Run, ws: TracedConnection, index: int, label: str,
                  expect: ExpectStep) -> None:
    until = run.until(expect.timeout)
    try:
        message = await _recv(run, ws, until)
    except TimeoutError:
        raise Failure(Verdict(Outcome.MESSAGE_TIMEOUT,
                              f"no message {run.timeout_words(expect.timeout, until)} "
                              f"at step {label}"),
                      Found(step=index, step_name=label)) from None
    if isinstance(message, bytes):
        raise Failure(Verdict(Outcome.UNEXPECTED_MESSAGE,
                              f"step {label}: expected a text message, got a binary frame "
                              f"({len(message)} bytes)"),
                      Found(step=index, step_name=label, last_message=message))
    reason = mismatch(message, expect)
    if reason is None:
        run.expected_seen = True
        run.ctx.answered(Answer(body=message))  # a flow step's values: the matched message
        return
    ok, data = parse_json(message)
    if ok and is_auth_error(data):
        code, close_reason = await _linger_for_close(run, ws)
        raise Failure(Verdict(Outcome.AUTH_REJECTED,
                              f"step {label}: the server sent an auth error message",
                              hint=_auth_message_hint(run, code, close_reason)),
                      Found(step=index, step_name=label, last_message=message,
                            close_code=code, close_reason=close_reason))
    raise Failure(Verdict(Outcome.UNEXPECTED_MESSAGE, f"step {label}: {reason}"),
                  Found(step=index, step_name=label, last_message=message))


def _auth_message_hint(run: Run, code: int | None, reason: str | None) -> str:
    if code is not None:
        return close_hint(code, reason, before_first_expected=not run.expected_seen)
    return "an auth error message after accept: the credentials were refused"


async def _send(run: Run, ws: TracedConnection, send: SendStep) -> None:
    payload = send.text if send.text is not None else json.dumps(send.json_)
    trace = run.ctx.trace
    if trace is not None:
        # ${trace_id}, ${span_id}, ${traceparent}: hex digits and dashes, so substituting
        # into the JSON text needs no escaping. Without a trace they are sent as written.
        payload = substitute(payload, trace.variables())
    if run.transcript is not None:
        run.transcript.add("sent", "text", payload, run.now())
    with deadline_at(run.deadline):
        await ws.send(payload)


async def _expect_events(run: Run, ws: TracedConnection, index: int, label: str,
                         spec: ExpectEventsStep) -> None:
    """Receive until the matcher (:class:`~monitor.probes.events.EventMatcher`) is
    complete; the I/O around its decisions: timeouts, closes, binary frames, the close that
    follows an auth error message."""
    until = run.until(spec.timeout)
    start = run.now()
    # What the step remembers of the messages is bounded and kept as they arrive
    # (monitor.limits, monitor.keep), whatever and however fast the server sends.
    matcher = EventMatcher(spec, label, keep=Keeper(run.ctx.redactor))
    handled = 0  # messages handled since the step last let the event loop run

    def fail(outcome: Outcome, detail: str, message: str | bytes | None,
             code: int | None = None, reason: str | None = None) -> Failure:
        frames, omitted = matcher.frames_seen()
        return Failure(Verdict(outcome, f"step {label}: {detail}"),
                       Found(step=index, step_name=label, last_message=message,
                             close_code=code, close_reason=reason,
                             events_seen=tuple(matcher.seen.kept),
                             events_seen_omitted=matcher.seen.omitted,
                             frames_seen=tuple(frames), frames_seen_omitted=omitted,
                             hint=matcher.hint()))

    try:
        while not matcher.complete:
            if handled >= YIELD_EVERY:
                # Messages queued back to back are read without waiting: let the other
                # probes (and this run's timers) have the loop now and then.
                handled = 0
                await asyncio.sleep(0)
            handled += 1
            try:
                message = await _recv(run, ws, until)
            except TimeoutError:
                raise fail(Outcome.MESSAGE_TIMEOUT,
                           f"events still missing {run.timeout_words(spec.timeout, until)}: "
                           f"{matcher.still()} (seen: {matcher.seen_words()})", None) from None
            except ConnectionClosed as exc:
                closed = _closed(run, ws, exc, f"during step {label}")
                failure = fail(closed.verdict.outcome, "", None, closed.code, closed.reason)
                raise Failure(closed.verdict, failure.found) from None
            if isinstance(message, bytes):
                raise fail(Outcome.UNEXPECTED_MESSAGE,
                           f"expected JSON events, got a binary frame ({len(message)} bytes)",
                           message)
            ok, data = parse_json(message)
            if not ok:
                raise fail(Outcome.UNEXPECTED_MESSAGE, "expected JSON events, got text that "
                           "is not JSON", message)
            fed = matcher.feed(data, run.now() - start, len(message))
            if fed.outcome is not None:
                if fed.auth:
                    code, close_reason = await _linger_for_close(run, ws)
                    raise fail(fed.outcome, fed.detail, message, code, close_reason)
                raise fail(fed.outcome, fed.detail, message)
            if fed.matched:
                run.expected_seen = True
    finally:
        run.events.extend(EventTiming(label, event, at) for event, at in matcher.timings)
        run.matches.extend(matcher.matches)
        for event, n in matcher.duplicates.items():
            run.duplicates[event] = run.duplicates.get(event, 0) + n


async def close(run: Run, ws: TracedConnection) -> None:
    """Close with 1000; a server that never answers the close must not hold the probe."""
    wait = min(CLOSE_TIMEOUT, run.remaining())
    if run.transcript is not None and ws.state.name == "OPEN":
        run.transcript.add("sent", "close", "1000", run.now())
    if wait <= 0:
        ws.transport.abort()
        return
    try:
        with deadline_at(run.now() + wait):
            await ws.close(CloseCode.NORMAL_CLOSURE)
    except Exception:  # the verdict is already decided; closing is housekeeping
        ws.transport.abort()


__all__ = ["CLOSE_TIMEOUT", "LINGER_FOR_CLOSE", "REJECTION_GRACE", "after_accept_negative",
           "close", "run_step"]
