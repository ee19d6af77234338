"""The ``http`` kind as the rest of synthmon sees it: its runner, its phases, and the
blackbox-compatible gauges of its last run."""

from __future__ import annotations

from monitor.probes.http.run import run_http
from monitor.probes.kind import Gauge, PhaseGauge, ProbeKind, Wording
from monitor.probes.net.phases import HTTP_PHASES
from monitor.result import Result


def status_code(r: Result) -> float:
    return float(r.status_code or 0)


STATUS_GAUGE = Gauge("probe_http_status_code", "HTTP status of the last run, 0 if none",
                     status_code)
PHASE_GAUGE = PhaseGauge("probe_http_duration_seconds", "HTTP phases of the last run",
                         HTTP_PHASES)

KIND = ProbeKind(
    name="http",
    runner=run_http,
    phases=HTTP_PHASES,
    gauges=(STATUS_GAUGE, PHASE_GAUGE),
    words=Wording("HTTP", "answer", lambda r: None),
)

__all__ = ["KIND", "PHASE_GAUGE", "STATUS_GAUGE"]
