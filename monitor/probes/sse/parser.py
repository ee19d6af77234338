"""The Server-Sent Events stream as the WHATWG HTML standard interprets it (9.2.6, "Event
stream interpretation"), fed the decoded bytes of a response as they arrive.

Written here rather than taken from a library: the well-kept parsers are tied to another
client (httpx-sse to httpx, sseclient-py to a blocking iterator), and a monitor needs what
a browser's EventSource hides: an event without an ``event:`` line keeps no type (the
standard's default ``message`` is not assumed), heartbeat comments are counted, and every
buffer is bounded so that a hostile stream costs a fixed amount of memory.

The algorithm, in short: the stream is UTF-8 (a leading BOM is dropped, invalid bytes are
replaced); lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start
of the next are one line end); a line starting with ``:`` is a comment; ``field: value``
(one leading space of the value dropped) or a bare ``field`` (empty value); ``event`` sets
the type, ``data`` appends a line to the data, ``id`` sets the last event id (unless it
holds U+0000; it persists across events), ``retry`` takes digits only; an empty line
dispatches the event, unless its data is empty; the end of the stream discards an event
not yet dispatched. Pure and table-tested (tests/probes/sse/test_parser.py, with the
standard's own examples).
"""

from __future__ import annotations

import re
from codecs import utf_8_decode as _utf8
from typing import NamedTuple

_EOL = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")
BOM = "\ufeff"


class Event(NamedTuple):
    """One dispatched event. ``type`` is its ``event:`` field (None without one), ``id``
    the last event id at its dispatch (None when none was ever set). A named tuple rather
    than a frozen dataclass: one is made for every event of every stream, at under half
    the cost (a frozen dataclass sets each field through ``object.__setattr__``)."""

    type: str | None
    data: str
    id: str | None = None
    retry: int | None = None  # the reconnection time the stream last asked for, in ms


_new = tuple.__new__


class TooLarge(Exception):
    """A line or an event's data beyond the parser's bound: the stream is refused."""


class Parser:
    """Feed it bytes as they come; it returns the events each chunk completes."""

    __slots__ = ("_at_start", "_data", "_data_size", "_event", "_id", "_pending", "_rest",
                 "_retry", "comments", "max_bytes")

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes  # of one line, and of one event's data
        self._pending = b""  # the start of a character cut by the chunk's end
        self._rest = ""  # the start of a line whose end has not come yet
        self._at_start = True  # nothing decoded yet: a BOM here is dropped
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0  # comment lines seen (heartbeats); they are not events

    def feed(self, chunk: bytes) -> list[Event]:
        """The events that ``chunk`` completes, in order. Raises :class:`TooLarge`."""
        if self._pending:
            chunk = self._pending + chunk
            self._pending = b""
        if chunk[-1:] == b"\n":
            # It ends a line, so no character is cut at its end: decoded whole, it reads as
            # the incremental decoder reads it.
            text = chunk.decode("utf-8", "replace")
        else:
            # UTF-8 as an incremental decoder reads it (what codecs' does, without its
            # frames): a character cut by the chunk's end waits for the next chunk.
            text, used = _utf8(chunk, "replace", False)
            if used < len(chunk):
                self._pending = chunk[used:]
        if self._at_start and text:
            self._at_start = False
            if text[0] == BOM:
                text = text[1:]
        if self._rest:
            text = self._rest + text
            self._rest = ""
        if "\r" not in text and not self._data and self._event is None:
            # The common chunk of a stream: one event of one line of data, whole
            # (``data: {...}``, a token), read without splitting anything.
            end = len(text) - 2
            if text.find("\n") == end and text[-1] == "\n" and text[:5] == "data:":
                value = text[6:end] if text[5] == " " else text[5:end]
                if len(value) >= self.max_bytes:  # its data and the line end
                    raise TooLarge(f"an event whose data is longer than {self.max_bytes} "
                                   "characters")
                # Made as namedtuple's own _make makes one, without its two calls.
                return [_new(Event, (None, value, self._id, self._retry))]
            return self._blocks(text)
        return self._lines(text, final=False)

    def close(self) -> list[Event]:
        """The end of the stream: a CR held back is a line end after all (it may end the
        empty line that dispatches an event); an event not dispatched by an empty line is
        then discarded, as the standard says."""
        rest, _ = _utf8(self._pending, "replace", True)
        self._pending = b""
        events = self._lines(self._rest + rest, final=True)
        self._data, self._data_size, self._event = [], 0, None
        return events

    def _blocks(self, text: str) -> list[Event]:
        """``text`` with LF line ends, no event begun before it: read a block (the lines
        before an empty line) at a time. A block of one line of data is an event whole, the
        common case of a stream (``data: {...}``, a token); any other block goes line by
        line, after which no event is begun either. Table-tested to read as line by line
        (tests/probes/sse/test_parser.py)."""
        blocks = text.split("\n\n")
        last = blocks.pop()  # lines not yet ended by an empty line
        out: list[Event] = []
        for block in blocks:
            if "\n" not in block and block.startswith("data:"):
                value = block[6:] if block.startswith("data: ") else block[5:]
                if len(value) + 1 > self.max_bytes:
                    raise TooLarge(f"an event whose data is longer than {self.max_bytes} "
                                   "characters")
                out.append(Event(None, value, self._id, self._retry))
            else:
                out += self._lines(block + "\n\n", final=False)
        if "\n" in last:
            return out + self._lines(last, final=False)
        if len(last) > self.max_bytes:  # a line whose end has not come yet
            raise TooLarge(f"a line longer than {self.max_bytes} characters")
        self._rest = last
        return out

    def _lines(self, text: str, *, final: bool) -> list[Event]:
        out: list[Event] = []
        # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
        end = len(text) - 1 if not final and text.endswith("\r") else len(text)
        if "\r" in text:
            lines = _EOL.split(text[:end])
            rest = lines.pop() + text[end:]
        else:  # LF only, the common case: one split, no regex
            lines = text.split("\n")
            rest = lines.pop()
        line_of = self._line
        for line in lines:
            if line.startswith("data:"):  # the common case, inline: a line of data
                value = line[6:] if line.startswith("data: ") else line[5:]
                self._data_size += len(value) + 1
                if self._data_size > self.max_bytes:
                    raise TooLarge(f"an event whose data is longer than {self.max_bytes} "
                                   "characters")
                self._data.append(value)
            elif line:
                line_of(line)
            elif self._data:
                out.append(Event(self._event or None, "\n".join(self._data), self._id,
                                 self._retry))
                self._data, self._data_size, self._event = [], 0, None
            else:
                self._event = None  # an empty line without data dispatches nothing
        if final:
            rest = ""  # a last line without its end: not a line (nor an empty one)
        elif len(rest) > self.max_bytes:
            raise TooLarge(f"a line longer than {self.max_bytes} characters")
        self._rest = rest
        return out

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            self.comments += 1
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_bytes:
                raise TooLarge(f"an event whose data is longer than {self.max_bytes} "
                               "characters")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and _DIGITS.fullmatch(value):
            self._retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = None
            return None
        event = Event(self._event or None, "\n".join(self._data), self._id, self._retry)
        self._data, self._data_size, self._event = [], 0, None
        return event


__all__ = ["BOM", "Event", "Parser", "TooLarge"]
