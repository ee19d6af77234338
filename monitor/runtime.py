"""One run of a probe: its attempts, each handed to the sinks, for the daemon and ``once``.

A failed attempt is tried again after ``retry_delay``, up to ``retries`` times, before the
failure counts: a blip that heals within the delay never reaches the gauges (and so never
pages). Every attempt goes to ``observe`` marked with its number and whether it is the
run's final one; the probe itself stays pure (spec in, Result out) and knows nothing of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from monitor.config import Probe
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.result import Result

# A run that cannot work until the config changes (a secret missing at run time) fails the
# same way on every try: retrying it only delays what the person must read.
NOT_RETRIED = frozenset({Outcome.SUCCESS, Outcome.CONFIG_ERROR})


def retried(outcome: Outcome) -> bool:
    """Whether an attempt ending in ``outcome`` is tried again (when retries are left)."""
    return outcome not in NOT_RETRIED


async def run_with_retries(probe: Probe, ctx: ProbeContext,
                           observe: Callable[[Result], None] | None = None) -> Result:
    """Run ``probe`` until an attempt succeeds or its retries are used up; return the final
    attempt. ``observe`` sees every attempt, the final one last."""
    attempt = 1
    while True:
        result = await run_probe(probe, ctx)
        final = attempt > probe.retries or not retried(result.outcome)
        if result.attempt != attempt or result.final is not final:
            # Not for the common first and final attempt, which a Result is by default: a
            # copy of a Result is ~70,000 instructions, a tenth of an HTTP run's own cost.
            result = replace(result, attempt=attempt, final=final)
        if observe is not None:
            observe(result)
        if final:
            return result
        attempt += 1
        await asyncio.sleep(probe.retry_delay)
