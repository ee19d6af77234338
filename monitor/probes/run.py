"""Dispatch a probe to its protocol and guarantee the two promises every probe makes:
it returns a :class:`Result` and it never outlives its timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from monitor.config import Probe
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.http import run_http
from monitor.probes.websocket import run_websocket
from monitor.result import Evidence, Result
from monitor.targets import target_of
from monitor.trace import TraceContext

# The protocol probes enforce the timeout themselves and keep their evidence; this outer
# bound only catches a bug in them, so it leaves them a little room first.
HARD_DEADLINE_GRACE = 0.5

Runner = Callable[[Probe, ProbeContext], Awaitable[Result]]

# The protocol runner of each probe type. A table, so that the tests can put in a runner
# with the bug each promise below is about and see the promise kept.
RUNNERS: dict[str, Runner] = {"http": run_http, "websocket": run_websocket}


async def run_probe(probe: Probe, ctx: ProbeContext,
                    trace: TraceContext | None = None) -> Result:
    """One run of ``probe``. Each run is its own W3C trace (``trace``, or a new one unless
    the probe has ``trace: false``): the probe sends it, the result carries its ids."""
    if trace is None and probe.trace:
        trace = TraceContext.new(probe.tracestate)
    if trace is not None:
        ctx = replace(ctx, trace=trace)
    result = await _run(probe, ctx)
    if trace is not None and result.trace_id is None:
        result = replace(result, trace_id=trace.trace_id, span_id=trace.span_id)
    return result


async def _run(probe: Probe, ctx: ProbeContext) -> Result:
    started = time.time()
    t0 = time.perf_counter()
    runner = RUNNERS[probe.type]
    try:
        async with asyncio.timeout(probe.timeout + HARD_DEADLINE_GRACE):
            return await runner(probe, ctx)
    except TimeoutError:
        detail = f"no result within the probe timeout ({probe.timeout:g}s)"
        outcome = Outcome.TIMEOUT
    except Exception as exc:  # a probe bug must not take the scheduler down with it
        detail = ctx.redactor.redact(f"internal error in the {probe.type} probe: "
                                     f"{type(exc).__name__}: {exc}") or ""
        outcome = Outcome.PROTOCOL_ERROR
    return Result(probe=probe.name, type=probe.type, target=target_of(probe.spec.url),
                  outcome=outcome, started_at=started,
                  duration_seconds=time.perf_counter() - t0, evidence=Evidence(detail=detail))
