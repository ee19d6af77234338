"""What a probe may use besides its spec, and the one function that builds it.

The daemon, ``synthmon once``, the tests and the benchmarks all call :func:`open_context`,
so that what they run and measure is the same session, token cache and redactor wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from monitor.auth import AuthError, TokenSource
from monitor.config import Probe
from monitor.frozen import fast_init
from monitor.probes.answer import Answer, OnAnswer
from monitor.probes.net.phases import PHASES, PhaseTimer
from monitor.probes.net.session import new_session
from monitor.redact import Redactor
from monitor.targets import target_of
from monitor.trace import TraceContext


@fast_init
@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Shared by every run. ``session`` never reuses connections (each run measures a fresh
    connect), but reusing the session object itself saves its setup on every run."""

    session: aiohttp.ClientSession
    tokens: TokenSource
    redactor: Redactor
    # The run's trace context; set per run (see :func:`monitor.probes.run.run_probe`), None
    # in the shared context and when the probe has ``trace: false``.
    trace: TraceContext | None = None
    # A flow's step (monitor.probes.flow) takes its values from the answers its runner
    # receives: set per step, None otherwise.
    on_answer: OnAnswer | None = None

    @property
    def trace_id(self) -> str | None:
        """The run's trace id, for the Result it builds (None without trace context)."""
        return None if self.trace is None else self.trace.trace_id

    @property
    def span_id(self) -> str | None:
        """The span id of the run's client span, for the Result it builds."""
        return None if self.trace is None else self.trace.span_id

    def with_trace(self, trace: TraceContext) -> ProbeContext:
        """This context for one run with its own trace context (what ``replace`` makes, at
        a fifth of its cost: it is made for every run)."""
        return ProbeContext(self.session, self.tokens, self.redactor, trace)

    def answered(self, answer: Answer) -> None:
        """Hand an answer to the flow step being run (before it is judged and its evidence
        redacted, so that a value it extracts as secret is redacted there too)."""
        if self.on_answer is not None:
            self.on_answer(answer)

    def trace_headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) for every request of this run, or nothing."""
        return {} if self.trace is None else self.trace.headers()

    async def token_for(self, probe: Probe) -> str | None:
        """The probe's bearer token, or None when it has no auth. Raises AuthError."""
        if probe.auth is None or probe.auth_name is None:
            return None
        return await self.tokens.token(probe.auth_name, probe.auth, self.session,
                                       trace=self.trace)

    async def close(self) -> None:
        """Close the session; the context is not used afterwards."""
        await self.session.close()


def open_context(redactor: Redactor, tokens: TokenSource | None = None, *,
                 session: aiohttp.ClientSession | None = None) -> ProbeContext:
    """The context every probe run gets; call :meth:`ProbeContext.close` when done.

    Needs a running event loop (the session's connector binds to it). ``tokens`` defaults
    to a fresh cache redacting with ``redactor``; ``session`` is only for a benchmark that
    compares synthmon's session with a plain one.
    """
    return ProbeContext(session=session if session is not None else new_session(),
                        tokens=tokens if tokens is not None else TokenSource(redactor),
                        redactor=redactor)


# PHASES, PhaseTimer, new_session and target_of live in monitor.probes.net and
# monitor.targets now; re-exported here for the modules that still import them from here.
__all__ = ["PHASES", "AuthError", "PhaseTimer", "ProbeContext", "new_session",
           "open_context", "target_of"]
