"""The ``websocket`` kind as the rest of synthmon sees it: its runner, its phases, the
blackbox-compatible gauges of its last run, its span attributes and how its answer (the
upgrade) is put in words."""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from monitor.outcomes import Outcome
from monitor.probes.kind import NOT_RUN, Gauge, PhaseGauge, ProbeKind, SpanValue, Wording
from monitor.probes.net.phases import WS_PHASES
from monitor.result import Result

if TYPE_CHECKING:
    from monitor.config import Probe
    from monitor.probes.context import ProbeContext
    from monitor.probes.kind import Runner


@functools.cache
def _runner() -> Runner:
    """The runner and websockets, imported at their first use: 1.1 MiB of imports a daemon
    without WebSocket probes or steps never needs (issue 24). ``load`` below: preload
    imports them before the first run of a config that has some, outside every run's
    clock."""
    from monitor.probes.websocket.run import run_websocket

    return run_websocket


def _run(probe: Probe, ctx: ProbeContext) -> Awaitable[Result]:
    # A plain function handing over the runner's coroutine: no frame of its own in a run.
    return _runner()(probe, ctx)


def handshake(r: Result) -> str | None:
    """How the WebSocket upgrade was answered, in one phrase."""
    if r.outcome is Outcome.CONFIG_ERROR:
        # Not a network failure: the run stopped before anything was sent.
        return NOT_RUN + ": nothing was sent"
    if r.outcome is Outcome.CREDENTIALS_UNAVAILABLE:
        return NOT_RUN + ": no credentials to send"
    ev = r.evidence
    if r.upgraded or r.status_code == 101:
        sub = f", subprotocol {ev.subprotocol}" if ev.subprotocol else ", no subprotocol"
        return f"upgraded: 101 Switching Protocols{sub}"
    if r.status_code is None:
        return f"no HTTP answer to the upgrade ({r.outcome.value})"
    ctype = (ev.content_type or "").split(";")[0].strip()
    what = f"HTTP {r.status_code}" + (f" {ctype}" if ctype else "")
    if r.status_code >= 400:
        return f"refused: {what} instead of 101"
    return f"not upgraded: {what} instead of 101"


def span_attributes(r: Result) -> dict[str, SpanValue]:
    attrs: dict[str, SpanValue] = {}
    if r.close_code is not None:
        attrs["synthmon.websocket.close_code"] = r.close_code
    attrs["synthmon.websocket.upgraded"] = r.upgraded
    return attrs


KIND = ProbeKind(
    name="websocket",
    runner=_run,
    phases=WS_PHASES,
    gauges=(
        Gauge("probe_websocket_status_code",
              "handshake answer: 101 when upgraded, 0 when no HTTP answer",
              lambda r: float(r.status_code or 0)),
        Gauge("probe_websocket_connection_upgraded", "1 if the last handshake upgraded",
              lambda r: 1.0 if r.upgraded else 0.0),
        Gauge("probe_websocket_close_code", "server close code, 0 if none",
              lambda r: float(r.close_code or 0)),
        PhaseGauge("probe_websocket_duration_seconds", "WebSocket phases of the last run",
                   WS_PHASES),
    ),
    span_attributes=span_attributes,
    words=Wording("WebSocket", "handshake", handshake),
    upgrades=True,
    load=_runner,
)

__all__ = ["KIND", "handshake", "span_attributes"]
