"""The bounded transcript of one WebSocket conversation.

Every frame sent or received is noted with its direction, its offset from the start of the
handshake, its kind and the first TRANSCRIPT_BYTES of its payload, kept (:mod:`monitor.keep`:
redacted over a wider window before the cut, so a token straddling the cut is replaced
whole; control characters made visible); after TRANSCRIPT_FRAMES frames only a count is
kept, so a chatty or hostile server costs a fixed amount of memory per run.
"""

from __future__ import annotations

from monitor.keep import EMPTY, Keeper
from monitor.limits import TRANSCRIPT_BYTES, TRANSCRIPT_FRAMES
from monitor.result import Frame

KINDS = ("text", "binary", "ping", "pong", "close")


class Transcript:
    """Collects frames during a run; :meth:`frames` is what the Result keeps."""

    __slots__ = ("_frames", "_keep", "_omitted", "_t0", "limit")

    def __init__(self, keep: Keeper, t0: float, limit: int = TRANSCRIPT_FRAMES) -> None:
        self._keep = keep
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
        if isinstance(payload, bytes) and kind in ("ping", "pong"):
            payload = payload[:TRANSCRIPT_BYTES].hex()
        shown = self._keep.excerpt(payload, TRANSCRIPT_BYTES) or EMPTY
        self._frames.append(Frame(direction, round((now - self._t0) * 1000, 1), kind, size,
                                  shown))

    def frames(self) -> tuple[tuple[Frame, ...], int]:
        return tuple(self._frames), self._omitted


__all__ = ["KINDS", "Transcript"]
