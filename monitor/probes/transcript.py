"""The bounded transcript of one WebSocket conversation.

Every frame sent or received is noted with its direction, its offset from the start of the
handshake, its kind and the first TRANSCRIPT_BYTES of its payload, kept (:mod:`monitor.keep`:
redacted over a wider window before the cut, so a token straddling the cut is replaced
whole; control characters made visible); after TRANSCRIPT_FRAMES frames only a count is
kept, so a chatty or hostile server costs a fixed amount of memory per run.

The frames are kept when the run ends (:meth:`Transcript.frames`), each from the window
noted as it came: a secret the run learns from a later frame (a flow step's extracted
token) is redacted in the frames before it too.
"""

from __future__ import annotations

from monitor.keep import EMPTY, Keeper
from monitor.limits import REDACT_MARGIN, TRANSCRIPT_BYTES, TRANSCRIPT_FRAMES
from monitor.result import Frame

# What is noted of a frame until the run ends: enough to keep its start and to tell that
# there was more.
_WINDOW = TRANSCRIPT_BYTES + REDACT_MARGIN + 1


# What is noted of a frame until the run ends, a plain tuple (a stream notes one an event):
# (direction, the loop time it came (its offset is worked out only when kept), its kind, its
# size, its window).
_Noted = tuple[str, float, str, int, str | bytes]

KINDS = ("text", "binary", "ping", "pong", "close")


class Transcript:
    """Collects frames during a run; :meth:`frames` is what the Result keeps."""

    __slots__ = ("_frames", "_keep", "_omitted", "_t0", "limit")

    def __init__(self, keep: Keeper, t0: float, limit: int = TRANSCRIPT_FRAMES) -> None:
        self._keep = keep
        self._t0 = t0
        self._frames: list[_Noted] = []
        self._omitted = 0
        self.limit = limit

    def add(self, direction: str, kind: str, payload: bytes | str, now: float) -> None:
        """Note one frame. ``payload`` of a close frame is its code and reason as text."""
        frames = self._frames
        if len(frames) >= self.limit:
            self._omitted += 1
            return
        if isinstance(payload, str):
            # Its size in UTF-8; ASCII text (nearly every frame) is one byte a character,
            # which str knows without encoding it.
            size = len(payload) if payload.isascii() else len(
                payload.encode("utf-8", "replace"))
        else:
            size = len(payload)
            if kind in ("ping", "pong"):
                payload = payload[:TRANSCRIPT_BYTES].hex()
        frames.append((direction, now, kind, size, payload[:_WINDOW]))

    def frames(self) -> tuple[tuple[Frame, ...], int]:
        """The frames, kept with every secret known now."""
        keep = self._keep.excerpt
        t0 = self._t0
        return tuple([Frame(direction, round((at - t0) * 1000, 1), kind, size,
                            keep(window, TRANSCRIPT_BYTES) or EMPTY)
                      for direction, at, kind, size, window in self._frames]), self._omitted


__all__ = ["KINDS", "Transcript"]
