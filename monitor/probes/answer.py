"""What a step of a flow takes its values from (:mod:`monitor.probes.flow.extract`): the
answer a kind's runner received, handed over before the run is judged and its evidence
redacted, so that a value marked secret is redacted in that step's own evidence too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from monitor.frozen import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: the response headers, and the body, the matched WebSocket message or the
    matched event's data (None when there is none, e.g. the handshake alone)."""

    headers: tuple[tuple[str, str], ...] = ()
    body: str | bytes | bytearray | None = None


# Called by a runner with each answer a flow step may extract from; it must not raise.
OnAnswer = Callable[[Answer], None]

__all__ = ["Answer", "OnAnswer"]
