"""Dispatch a probe to its protocol and guarantee the two promises every probe makes:
it returns a :class:`Result` and it never outlives its timeout."""

from __future__ import annotations

import asyncio
import time

from monitor.config import Probe
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.http import run_http
from monitor.probes.websocket import run_websocket
from monitor.result import Evidence, Result
from monitor.targets import target_of

# The protocol probes enforce the timeout themselves and keep their evidence; this outer
# bound only catches a bug in them, so it leaves them a little room first.
HARD_DEADLINE_GRACE = 0.5


async def run_probe(probe: Probe, ctx: ProbeContext) -> Result:
    started = time.time()
    t0 = time.perf_counter()
    runner = run_http if probe.spec.http is not None else run_websocket
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
