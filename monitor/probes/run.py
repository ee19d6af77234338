"""Dispatch a probe to its kind's runner and guarantee the two promises every probe makes:
it returns a :class:`Result` and it never outlives its timeout."""

from __future__ import annotations

import time
from dataclasses import replace

from monitor.config import Probe
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.deadline import deadline
from monitor.probes.kind import Runner
from monitor.probes.kinds import KINDS
from monitor.probes.record import Measured, Verdict, build_result, named
from monitor.result import Result
from monitor.trace import TraceContext

# The protocol probes enforce the timeout themselves and keep their evidence; this outer
# bound only catches a bug in them, so it leaves them a little room first.
HARD_DEADLINE_GRACE = 0.5

# The runner of each probe kind (monitor.probes.kinds). A table of its own, so that the
# tests can put in a runner with the bug each promise below is about and see it kept.
RUNNERS: dict[str, Runner] = {name: kind.runner for name, kind in KINDS.items()}


async def run_probe(probe: Probe, ctx: ProbeContext,
                    trace: TraceContext | None = None) -> Result:
    """One run of ``probe``. Each run is its own W3C trace (``trace``, or a new one unless
    the probe has ``trace: false``): the probe sends it, the result carries its ids."""
    if trace is None and probe.trace:
        trace = TraceContext.new(probe.tracestate)
    if trace is not None:
        ctx = ctx.with_trace(trace)
    # One coroutine, not this one awaiting another: every wake-up of the run passes
    # through each coroutine that awaits it.
    started = time.time()
    t0 = time.perf_counter()
    runner = RUNNERS[named(probe).type]
    try:
        with deadline(probe.timing.run_bound + HARD_DEADLINE_GRACE):
            result = await runner(probe, ctx)
    except TimeoutError:
        detail = f"no result within the probe timeout ({probe.timeout:g}s)"
        outcome = Outcome.TIMEOUT
    except Exception as exc:  # a probe bug must not take the scheduler down with it
        detail = f"internal error in the {probe.type} probe: {type(exc).__name__}: {exc}"
        outcome = Outcome.PROTOCOL_ERROR
    else:
        if probe.variant is not None and result.variant != probe.variant:
            result = replace(result, variant=probe.variant)
        if trace is not None and result.trace_id is None:
            result = replace(result, trace_id=trace.trace_id, span_id=trace.span_id)
        return result
    return build_result(probe, ctx, Verdict(outcome, detail),
                        Measured(started_at=started, duration_seconds=time.perf_counter() - t0))
