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

from typing import Any

from monitor.probes.websocket.kind import KIND

# The registry imports this package for KIND; the rest imports websockets, on demand only
# (kind.py says why).
_LAZY = {"run_websocket": "run", "Verdict": "verdicts",
         "classify_handshake_failure": "verdicts", "diagnosis_hint": "verdicts"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = ["KIND", "Verdict", "classify_handshake_failure", "diagnosis_hint", "run_websocket"]
