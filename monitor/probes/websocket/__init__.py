"""The WebSocket probe: open a WebSocket the way the product's clients do, run the
configured conversation, and say precisely where and how it failed.

- :mod:`.verdicts`: pure decisions, plain values in, an outcome and its words out (the
  answer to the upgrade, a close, the budgets, a message, the diagnosis hint);
- :mod:`.adapter`: the upgrade request and the websockets ``connect`` call (its hooks into
  websockets' internals are in :mod:`monitor.probes.net.wsconn`);
- :mod:`.state`: the run's clock and measurements, the typed evidence, the result;
- :mod:`.run`: resolve, connect, TLS, upgrade, diagnose; :mod:`.steps`: the conversation;
- :mod:`.kind`: the kind's declaration (runner, phases, gauges, span attributes, words).
"""

from monitor.probes.websocket.kind import KIND
from monitor.probes.websocket.run import run_websocket
from monitor.probes.websocket.verdicts import (
    Verdict,
    classify_handshake_failure,
    diagnosis_hint,
)

__all__ = ["KIND", "Verdict", "classify_handshake_failure", "diagnosis_hint", "run_websocket"]
