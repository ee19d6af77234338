"""The one place where what a target sent becomes kept evidence.

Every string a server chose (headers, reason phrase, content type, ``Location``, body,
frames, close reason, subprotocol, event types, the diagnostic GET's answer) reaches a
:class:`~monitor.result.Result` only as :data:`Kept`, and a ``Kept`` is made only here, by
a :class:`Keeper`, in four steps:

1. cut to a window a little wider than what is kept (:data:`~monitor.limits.REDACT_MARGIN`),
   which bounds the work on a string of any size;
2. control characters made visible, one character for one (C0 as the Unicode control
   pictures, ``ESC`` as ``␛``; C1, DEL and the bidirectional overrides as ``�``; tab and
   newline kept): a terminal reading ``once``'s table, a CI log or a console log line never
   receives an escape sequence from a target (clear screen, window title, OSC 8 links,
   colours). One for one, so the redaction window and the cut below stay where they were;
3. every secret redacted (:class:`~monitor.redact.Redactor`: raw, base64, base64url),
   credential headers hidden whole;
4. cut to its bound (:mod:`monitor.limits`), with "…" when something was cut.

:data:`Kept` is a distinct type for the type checker: the evidence records only take kept
strings, so a server string that skipped this module is a type error (``mypy --strict``),
not a leak found later. ``tests/test_keep.py`` checks that nothing else makes one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Final, NewType

from monitor.limits import (
    DETAIL_CHARS,
    EXCERPT_BYTES,
    HEADER_VALUE_CHARS,
    HEADERS_BYTES,
    HEADERS_KEPT,
    REDACT_MARGIN,
    TEXT_CHARS,
    TYPE_CHARS,
)
from monitor.redact import Redactor

Kept = NewType("Kept", str)
"""A string fit to show anywhere: redacted, without control characters, bounded."""

EMPTY: Final = Kept("")
# Kept headers remembered (Keeper.header): at most this many, each at most this long.
MEMO_HEADERS: Final = 1024
MEMO_HEADER_CHARS: Final = 256
MORE: Final = "…"  # marks a string that was cut

KeptHeaders = tuple[tuple[Kept, Kept], ...]

# One for one: C0 controls as their Unicode control pictures (U+2400 + code), DEL as its
# picture, C1 controls and the characters that reorder or hide text (bidirectional
# overrides and isolates, as in "Trojan Source") as the replacement character. Tab and
# newline are text; a carriage return is kept only before a newline (see printable).
_VISIBLE: Final = {
    **{c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)},
    0x7F: 0x2421,
    **dict.fromkeys(range(0x80, 0xA0), 0xFFFD),
    **dict.fromkeys((0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                     *range(0x2066, 0x206A)), 0xFFFD),
}
_LONE_CR: Final = re.compile(r"\r(?!\n)")
CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                             "\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def printable(text: str) -> str:
    """``text`` with every control character made visible, one character for one. A
    carriage return survives only as part of a CRLF line end (harmless anywhere); alone it
    would move a terminal's cursor back over what was printed, so it becomes ``␍``."""
    if text.isprintable() or CONTROL.search(text) is None:  # nearly always: no copy
        return text
    text = text.translate(_VISIBLE)
    return _LONE_CR.sub("\u240d", text) if "\r" in text else text


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character :func:`printable` would change."""
    # A printable string (str.isprintable: a scan in C, four times the regex's speed) holds
    # none of CONTROL's characters, which are all unprintable (tests/test_keep.py checks
    # every code point); anything else is asked of the regex.
    return not text.isprintable() and CONTROL.search(text) is not None


def _cut_chars(text: str, limit: int, more: bool) -> str:
    if more or len(text) > limit:
        return text[:limit] + MORE
    return text


def _cut_bytes(text: str, limit: int, more: bool) -> str:
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit and not more:
        return text
    return raw[:limit].decode("utf-8", "ignore") + MORE


def _window(value: str | bytes | bytearray | memoryview, size: int) -> tuple[str, bool]:
    """The start of ``value`` as text, and whether there was more."""
    more = len(value) > size
    if isinstance(value, str):
        return value[:size], more
    return bytes(value[:size]).decode("utf-8", "replace"), more


def _interned(value: str) -> Kept:
    # Only a str itself can be interned: aiohttp's header names are a subclass (istr).
    return Kept(sys.intern(value if type(value) is str else str(value)))


def shared(value: Kept) -> Kept:
    """One object for equal kept strings: the newest run of every probe keeps its headers,
    content type and detail, and most of them repeat across probes and runs. Interned
    strings are freed with their last reference."""
    return _interned(value)


class Keeper:
    """Turns what a target sent into :data:`Kept` strings, with ``redactor``'s secrets."""

    __slots__ = ("_last_type", "redactor")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        # The last short type name kept, with the redactor's pattern it was kept with: a
        # stream repeats one type in event after event (chat.completion.chunk).
        self._last_type: tuple[re.Pattern[str] | None, str, Kept] | None = None

    def _clean(self, text: str) -> str:
        return self.redactor.redact(printable(text)) or ""

    def text(self, value: str | bytes | bytearray | None, limit: int = TEXT_CHARS
             ) -> Kept | None:
        """A short string a server sent (content type, close reason, subprotocol, ...),
        at most ``limit`` characters; None stays None."""
        if value is None:
            return None
        if type(value) is str and len(value) <= limit and not has_control(value):
            # Nearly always (every log value, most evidence): nothing to make visible,
            # nothing to cut before redacting.
            shown = self.redactor.redact(value)
            if shown is not None and len(shown) <= limit:
                return Kept(shown)
        window, more = _window(value, limit + REDACT_MARGIN)
        return Kept(_cut_chars(self._clean(window), limit, more))

    def words(self, value: str | None, limit: int = DETAIL_CHARS) -> Kept:
        """A detail or hint: synthmon's words around strings a server chose."""
        return self.text(value, limit) or EMPTY

    def optional_words(self, value: str | None, limit: int = DETAIL_CHARS) -> Kept | None:
        """A hint that may be absent: None or empty stays None."""
        return self.text(value, limit) if value else None

    def excerpt(self, data: str | bytes | bytearray | memoryview | None,
                limit: int = EXCERPT_BYTES) -> Kept | None:
        """The first ``limit`` bytes (UTF-8) of a body or message; None when empty."""
        if not data:
            return None
        if type(data) is bytes and len(data) <= limit and data.isascii():
            # Nearly every body: ASCII bytes within the bound, read as the str below.
            data = data.decode("ascii")
        if type(data) is str and data.isascii() and len(data) <= limit \
                and (data.isprintable() or CONTROL.search(data) is None):
            # Nearly every frame of a transcript: ASCII (a byte a character, which str
            # knows without encoding), within the bound, nothing to make visible (what
            # has_control says, inline: a stream keeps one of these an event).
            shown = self.redactor.redact(data)
            if shown is data:  # nothing redacted (no secret known, nearly always)
                return Kept(data)
            if shown is not None and shown.isascii() and len(shown) <= limit:
                return Kept(shown)
        window, more = _window(data, limit + REDACT_MARGIN)
        return Kept(_cut_bytes(self._clean(window), limit, more))

    def type_name(self, value: str) -> Kept:
        """An event type a message carried, as kept in events seen and frames seen."""
        pattern = self.redactor.pattern
        last = self._last_type
        if last is not None and last[0] is pattern and last[1] == value:
            return last[2]  # the same string kept with the same secrets: the same result
        kept = Kept(_cut_chars(self._clean(value[:TYPE_CHARS + REDACT_MARGIN]), TYPE_CHARS,
                               len(value) > TYPE_CHARS + REDACT_MARGIN))
        if len(value) <= TYPE_CHARS:  # only a short one is held on to
            self._last_type = (pattern, value, kept)
        return kept

    def header(self, name: str, value: str) -> tuple[Kept, Kept]:
        """One header: its name, and its value with credentials hidden whole."""
        # Most headers come again run after run (Server, Content-Type, Connection): one
        # kept as it was received is remembered until the secrets change (the memo is read
        # before the redactor, so that it is never older than the secrets used below).
        memo = self.redactor.header_memo
        known = memo.get((name, value))
        if known is not None:
            return known
        if (len(name) <= TEXT_CHARS and len(value) <= HEADER_VALUE_CHARS
                and not has_control(name) and not has_control(value)):
            # Nearly every header of every run: nothing to make visible, nothing to cut
            # before redacting; a run's headers are kept this way (a few µs for all).
            shown_name = self.redactor.redact(name) or ""
            shown = self.redactor.header(name, value)
            if len(shown_name) <= TEXT_CHARS and len(shown) <= HEADER_VALUE_CHARS:
                pair = _interned(shown_name), _interned(shown)
                if (shown == value and shown_name == name
                        and len(name) + len(value) <= MEMO_HEADER_CHARS):
                    # Only what is kept as it came (nothing hidden: no credential lingers
                    # here), short, and a bounded number of them.
                    if len(memo) >= MEMO_HEADERS:
                        memo.clear()
                    memo[(name, value)] = pair
                return pair
        window, more = _window(value, HEADER_VALUE_CHARS + REDACT_MARGIN)
        shown = self.redactor.header(name, printable(window))
        return (shared(self.text(name) or EMPTY),
                shared(Kept(_cut_chars(shown, HEADER_VALUE_CHARS, more))))

    def headers(self, items: Iterable[tuple[str, str]]) -> tuple[KeptHeaders, int]:
        """The headers of one answer, in order, as many as fit :data:`HEADERS_KEPT` and
        :data:`HEADERS_BYTES`; and how many were left out. A header too big for what is
        left is skipped, not the ones after it: a short ``Location`` after a padded one is
        still kept."""
        kept: list[tuple[Kept, Kept]] = []
        size = omitted = 0
        redactor = self.redactor
        for item in items:
            if len(kept) >= HEADERS_KEPT:
                omitted += 1
                continue
            # The memo (see header) read here first, afresh for each header as header
            # reads it: a header met before costs a lookup, not a call, and nearly every
            # header of a run was met before.
            known = redactor.header_memo.get(item)
            pair = known if known is not None else self.header(*item)
            cost = len(pair[0]) + len(pair[1])
            if size + cost > HEADERS_BYTES:
                omitted += 1
                continue
            size += cost
            kept.append(pair)
        return tuple(kept), omitted


def ours(text: str) -> Kept:
    """A string synthmon wrote itself from the config alone (a fallback detail with no
    server string in it): only bounded and cleaned, for the odd path that has no redactor
    at hand. Never for anything a target sent."""
    return Kept(_cut_chars(printable(text), DETAIL_CHARS, False))


__all__ = ["CONTROL", "EMPTY", "MORE", "Keeper", "Kept", "KeptHeaders", "has_control", "ours",
           "printable", "shared"]
