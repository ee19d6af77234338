"""The ``http`` kind: one request, its answer checked against ``http.expect``.

- :mod:`.verdict`: pure: the answer (status, body, headers, latency) judged;
- :mod:`.run`: the request, timed by phase, and the Result;
- :mod:`.kind`: the kind's declaration (runner, phases, gauges, words).

The request itself is built by :mod:`monitor.probes.request`, which a stream's request
shares.
"""

from monitor.probes.http.kind import KIND
from monitor.probes.http.run import run_http

__all__ = ["KIND", "run_http"]
