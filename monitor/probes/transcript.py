"""The bounded transcript of one WebSocket conversation.

Every frame sent or received is noted with its direction, its offset from the start of the
handshake, its kind and the first 256 bytes of its payload, redacted; after 64 frames only a
count is kept, so a chatty or hostile server costs a fixed amount of memory per run.
Redaction happens before the cut (over a wider window), so a token straddling byte 256 is
replaced whole instead of leaving a recognisable fragment.
"""

from __future__ import annotations

from monitor.redact import Redactor
from monitor.result import TRANSCRIPT_BYTES, TRANSCRIPT_FRAMES, Frame

# Redact over this much of a payload before cutting it to TRANSCRIPT_BYTES.
_WINDOW = 4 * TRANSCRIPT_BYTES
KINDS = ("text", "binary", "ping", "pong", "close")


def _cut(text: str, limit: int = TRANSCRIPT_BYTES) -> str:
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + "…"


class Transcript:
    """Collects frames during a run; :meth:`frames` is what the Result keeps."""

    __slots__ = ("_frames", "_omitted", "_redactor", "_t0", "limit")

    def __init__(self, redactor: Redactor, t0: float, limit: int = TRANSCRIPT_FRAMES) -> None:
        self._redactor = redactor
        self._t0 = t0
        self._frames: list[Frame] = []
        self._omitted = 0
        self.limit = limit

    def add(self, direction: str, kind: str, payload: bytes | str, now: float) -> None:
        """Note one frame. ``payload`` of a close frame is its code and reason as text."""
        if len(self._frames) >= self.limit:
            self._omitted += 1
            return
        size = len(payload.encode("utf-8", "replace") if isinstance(payload, str) else payload)
        if isinstance(payload, str):
            text = payload[:_WINDOW]
        elif kind in ("ping", "pong"):
            text = payload[:TRANSCRIPT_BYTES].hex()
        else:
            text = payload[:_WINDOW].decode("utf-8", "replace")
        shown = _cut(self._redactor.redact(text) or "")
        self._frames.append(Frame(direction, round((now - self._t0) * 1000, 1), kind, size,
                                  shown))

    def frames(self) -> tuple[tuple[Frame, ...], int]:
        return tuple(self._frames), self._omitted


__all__ = ["KINDS", "Transcript"]
