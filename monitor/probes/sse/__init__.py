"""The ``sse`` kind: a request answered with a Server-Sent Events stream (LLM tokens, agent
progress), judged as it arrives.

- :mod:`.parser`: the WHATWG event-stream interpretation, fed bytes as they come (pure);
- :mod:`.verdicts`: pure: the answer's head, the stream's timeline against the budgets
  (a stall told from a buffered release), each outcome with its hint;
- :mod:`.run`: the request, the reading loop and its bounds, the Result;
- :mod:`.kind`: the kind's declaration (runner, phases, gauges, histogram, span, words).

The request is :mod:`monitor.probes.request`'s, as ``http`` sends it; the expected events
are judged by the matcher a WebSocket step uses (:mod:`monitor.probes.events`).
"""

from monitor.probes.sse.kind import KIND
from monitor.probes.sse.run import run_sse

__all__ = ["KIND", "run_sse"]
