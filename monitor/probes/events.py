"""Recognising expected events as they arrive, in messages whose envelope drifts.

Backends wrap events (``{"type": "system_message", "event": "agent_started", ...}``), rename
them (``agent_start``), send them twice or many times (a stream's chunks). The
``expect_events`` vocabulary (:class:`~monitor.config.ExpectEvents`) names one dotted path or
a list (the first present in a message wins), ``aliases``, ``count``, ``fail_on``.
:class:`EventMatcher` is fed one message at a time, as it arrives, and says whether it
matched, did not concern the wait, or ended it (and how); after a failed wait,
:func:`drift_hint` says whether the expected events did come, only in another field or
under another name. A WebSocket ``expect_events`` step and a stream's ``events`` both feed
one of these: the I/O around it is theirs.

Pure and table-tested: data in, typed answers out. What a wait remembers of its messages
is bounded (:mod:`monitor.limits`) and kept as it arrives (:mod:`monitor.keep`): a server
flooding messages of new types costs a fixed amount, however long it floods.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.config import ExpectEvents
from monitor.jsonpath import MISSING, lookup_parts
from monitor.keep import Keeper, Kept
from monitor.limits import (
    EVENTS_SEEN_KEPT,
    FRAMES_KEPT,
    FRAMES_TYPED,
    HELD_BYTES,
    NEAR_NAMES_KEPT,
    REDACT_MARGIN,
    TYPE_CHARS,
    TYPES_LISTED,
)
from monitor.outcomes import Outcome
from monitor.redact import Redactor
from monitor.result import EventMatch, FrameTypes

# Where event types are commonly found, besides the configured paths: a failed step's
# evidence shows every message's value under each of these, so that a drifted envelope is
# visible without guessing.
KNOWN_PATHS: tuple[str, ...] = ("type", "event", "event_type", "name", "data.type",
                                "payload.type", "data.event", "payload.event")
_AUTH_CODE = re.compile(r"auth", re.IGNORECASE)

Types = tuple[tuple[str, str | None], ...]  # (dotted path, the string there or None)
# What the keeper reads of a type name (its bound and the redaction margin): held of a value
# until it is kept, so that a token in it is still redacted whole.
_TYPE_WINDOW = TYPE_CHARS + REDACT_MARGIN


@dataclass(frozen=True, slots=True)
class Arrived:
    """One message of a wait, typed under every candidate path, as received (not yet kept:
    :meth:`Frames.add` keeps the first of them as evidence). Values are whole: a value cut
    before it is redacted could keep a fragment of a token."""

    offset_ms: float
    types: Types


@dataclass(frozen=True, slots=True)
class Typed:
    """What one message is, for an events step."""

    path: str | None  # the first configured path present in it (None: none is)
    spelling: str | None  # the string there (None: absent or not a string)
    event: str | None  # the expected type it stands for (None: not one of them)


_UNTYPED = Typed(None, None, None)
# The spellings a matcher remembers under each path (what they stand for): a stream names a
# handful of types; a hostile one naming a new type in every message costs no more.
SPELLINGS_REMEMBERED = 64


def classify(data: Any, spec: ExpectEvents,
             split: Sequence[tuple[str, Sequence[str]]] | None = None) -> Typed:
    """Under which of ``spec.paths`` ``data`` names its type; ``split``: the paths already
    split at their dots (a matcher splits them once, not once a message)."""
    for path, parts in split if split is not None else _split(spec.paths):
        value = lookup_parts(data, parts)
        if value is MISSING or value is None:
            continue
        if not isinstance(value, str):
            return Typed(path, None, None)
        return Typed(path, value, spec.event_of(value))
    return Typed(None, None, None)


def _split(paths: Sequence[str]) -> list[tuple[str, Sequence[str]]]:
    return [(p, p.split(".")) for p in paths]


def candidate_paths(spec: ExpectEvents) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*spec.paths, *KNOWN_PATHS)))


def types_under(data: Any, paths: Sequence[str], offset_ms: float,
                split: Sequence[tuple[str, Sequence[str]]] | None = None) -> Arrived:
    """The string under each candidate path (None where there is none); ``split``: the
    paths already split at their dots."""
    out: list[tuple[str, str | None]] = []
    for path, parts in split if split is not None else _split(paths):
        value = lookup_parts(data, parts)
        out.append((path, value if isinstance(value, str) else None))
    return Arrived(offset_ms, tuple(out))


class Seen:
    """The types of a wait's messages in order, as its detail and ``events_seen`` show
    them: the first EVENTS_SEEN_KEPT kept (each cut to TYPE_CHARS after redaction), the
    rest only counted."""

    __slots__ = ("_keep", "count", "kept")

    def __init__(self, keep: Keeper) -> None:
        self._keep = keep
        self.kept: list[Kept] = []
        self.count = 0

    def add(self, spelling: str) -> None:
        self.count += 1
        if len(self.kept) < EVENTS_SEEN_KEPT:
            self.kept.append(self._keep.type_name(spelling))

    @property
    def omitted(self) -> int:
        return self.count - len(self.kept)

    def words(self, listed: int = TYPES_LISTED) -> str:
        """"a, b, c" or "a, b, … and 9,980 more" (``listed`` named), "nothing" if none."""
        if not self.count:
            return "nothing"
        shown = ", ".join(self.kept[:listed])
        more = self.count - min(listed, len(self.kept))
        return f"{shown}, … and {more:,} more" if more > 0 else shown


class Frames:
    """The first FRAMES_KEPT messages of a wait with their types under every candidate
    path, as evidence; the rest counted. Each value is held as the window the keeper reads
    (so no more than a kept one costs) and kept only when asked, by a failed wait: a
    passing one never pays for it."""

    __slots__ = ("_keep", "_window", "count")

    def __init__(self, keep: Keeper) -> None:
        self._keep = keep
        self._window: list[Arrived] = []
        self.count = 0

    def add(self, arrived: Arrived | None) -> None:
        """One more message; ``arrived`` its types (None: not typed, past FRAMES_TYPED)."""
        self.count += 1
        if arrived is not None and len(self._window) < FRAMES_KEPT:
            self._window.append(Arrived(arrived.offset_ms, tuple(
                (path, None if value is None else value[:_TYPE_WINDOW])
                for path, value in arrived.types)))

    @property
    def kept(self) -> list[FrameTypes]:
        keep = self._keep
        return [FrameTypes(a.offset_ms, tuple(
                    (path, None if value is None else keep.type_name(value))
                    for path, value in a.types))
                for a in self._window]

    @property
    def omitted(self) -> int:
        return self.count - len(self._window)


def _near(value: str, wanted: Iterable[str]) -> str | None:
    """The expected type ``value`` is most likely a spelling of (agent_start →
    agent_started), or None."""
    wanted = list(wanted)
    for kind in wanted:
        if kind.startswith(value) or value.startswith(kind):
            return kind
    found = difflib.get_close_matches(value, wanted, n=1, cutoff=0.8)
    return found[0] if found else None


class Drift:
    """What a wait's messages show of a drifted envelope, gathered as they arrive, in
    bounded space: expected events seen under another path than the one read (one entry
    per path and event), and spellings near an expected event (the first NEAR_NAMES_KEPT,
    each as its first TYPE_CHARS to compare and kept to be shown). :meth:`hint` then words
    it for the events still missing."""

    __slots__ = ("_keep", "_near", "_other_field", "_spec")

    def __init__(self, spec: ExpectEvents, keep: Keeper) -> None:
        self._spec = spec
        self._keep = keep
        self._other_field: dict[str, list[str]] = {}
        self._near: dict[str, Kept] = {}  # its start -> the spelling as shown

    def observe(self, types: Types) -> None:
        spec = self._spec
        values = dict(types)
        used = next((p for p in spec.paths if values.get(p) is not None), None)
        for path, value in types:
            if value is None:
                continue
            event = spec.event_of(value)
            if event is not None and path != used:
                seen = self._other_field.setdefault(path, [])
                if event not in seen:
                    seen.append(event)
            elif event is None and path == used and len(self._near) < NEAR_NAMES_KEPT:
                start = value[:TYPE_CHARS]
                # near no expected type means near none of those still missing either
                if start not in self._near and _near(start, spec.types) is not None:
                    self._near[start] = self._keep.type_name(value)

    def hint(self, missing: Sequence[str]) -> str | None:
        if not missing:
            return None
        other_field = {path: kept for path, events in self._other_field.items()
                       if (kept := [e for e in events if e in missing])}
        other_name = {shown: near for start, shown in self._near.items()
                      if (near := _near(start, missing)) is not None}
        return _drift_words(self._spec, other_field, other_name)


def drift_hint(frames: Sequence[Arrived], spec: ExpectEvents,
               missing: Sequence[str], keep: Keeper | None = None) -> str | None:
    """Plain words when the missing events did arrive, under another field or name."""
    drift = Drift(spec, keep or Keeper(Redactor()))
    for frame in frames:
        drift.observe(frame.types)
    return drift.hint(missing)


def _drift_words(spec: ExpectEvents, other_field: Mapping[str, list[str]],
                 other_name: Mapping[Kept, str]) -> str | None:
    parts: list[str] = []
    for path, events in other_field.items():
        reads = ", ".join(spec.paths)
        parts.append(f"{', '.join(events)} came under the field {path!r}, which this step "
                     f"does not read first (field: [{reads}]); e.g. field: "
                     f"[{', '.join(dict.fromkeys((path, *spec.paths)))}]")
    if other_name:
        by_kind: dict[str, list[str]] = {}
        for spelling, kind in other_name.items():
            by_kind.setdefault(kind, []).append(spelling)
        shown = ", ".join(f"{' / '.join(s)} (for {k})" for k, s in by_kind.items())
        example = ", ".join(f"{k}: [{', '.join(s)}]" for k, s in by_kind.items())
        parts.append(f"events came under other names: {shown}; if they are the same events, "
                     f"add aliases: {{{example}}}")
    if not parts:
        return None
    return "the expected events did arrive, in another shape: " + "; ".join(parts)


def is_auth_error(data: Any) -> bool:
    """``{"type": "error_message", "error_code": "AUTH_FAILED", ...}`` and its relatives."""
    if not isinstance(data, dict):
        return False
    candidates = [data]
    candidates += [v for k in ("payload", "data", "error") if isinstance(v := data.get(k), dict)]
    for item in candidates:
        code = item.get("error_code") or item.get("code")
        if isinstance(code, str) and _AUTH_CODE.search(code):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Fed:
    """What one message did to the wait: ``outcome`` None and ``matched`` False: nothing
    (another type, a repeat); ``matched``: the arrival of an expected event (``event`` is
    the expected type it stands for); ``outcome`` set: the wait is over and failed, with
    ``detail`` (``auth``: it was an auth error message, after which a WebSocket lingers for
    the close that usually follows)."""

    outcome: Outcome | None = None
    detail: str = ""
    matched: bool = False
    event: str | None = None
    auth: bool = False


_NOTHING = Fed()


def show_types(types: Iterable[str]) -> str:
    return ", ".join(types) or "nothing"


@dataclass(slots=True)
class EventMatcher:
    """The judgement of one ``expect_events`` wait, fed one message at a time.

    ``feed(data, offset)`` takes the message's JSON value (a stream's event is
    ``{"event": <its event field>, "data": <its data, parsed>, ...}``) and the seconds
    since the wait began. The wait is :attr:`complete` once every expected type has
    arrived as often as ``count`` says (once, unless said otherwise, or as often as it is
    listed in ``types``). ``in_order`` judges the first arrival of each listed entry.

    What it remembers of the messages is bounded and kept by ``keep`` (:class:`Seen`,
    :class:`Frames`, :class:`Drift`: the server chose those strings). Only the first
    FRAMES_TYPED messages are typed under every candidate path, and lazily: while the
    messages held so far (their ``size`` as received) stay within HELD_BYTES they are only
    held, and typed if a failed wait asks, so a passing stream of small chunks never pays
    for it; past that they are typed as they come and not held, so a flood of large
    messages costs no memory.
    """

    spec: ExpectEvents
    step: str = ""  # the label event timings are reported under
    keep: Keeper = field(default_factory=lambda: Keeper(Redactor()))
    seen: Seen = field(init=False)  # what each message was, as named
    frames: Frames = field(init=False)
    drift: Drift = field(init=False)
    held: list[tuple[Any, float]] = field(default_factory=list)  # (data, offset), untyped
    held_bytes: int = 0
    eager: bool = False  # the held budget ran out: type each message as it comes
    timings: list[tuple[str, float]] = field(default_factory=list)  # (event, offset)
    matches: list[EventMatch] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    arrivals: Counter[str] = field(default_factory=Counter)
    position: int = 0  # in_order: index in :attr:`order` of the next expected entry
    order: tuple[str, ...] = ()
    needed: dict[str, int] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    short: int = 0  # arrivals still needed in all: 0 is complete
    split: list[tuple[str, Sequence[str]]] = field(default_factory=list)
    split_all: list[tuple[str, Sequence[str]]] = field(default_factory=list)  # of paths
    # What :meth:`feed` reads of the spec, worked out once (a stream feeds it event after
    # event): each configured path with the spellings met there and what they stand for
    # (bounded: the server chooses them), the fail_on set, the matched answer per event.
    lanes: tuple[tuple[str, Sequence[str], dict[str, Typed]], ...] = ()
    fail_on: frozenset[str] = frozenset()
    most: dict[str, int | None] = field(default_factory=dict)  # spec.allowed of each
    counted: frozenset[str] = frozenset()  # the types spec.count names
    unnamed: str = ""  # what seen shows for a message without a type
    fed_matched: dict[str, Fed] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.spec
        self.seen, self.frames = Seen(self.keep), Frames(self.keep)
        self.drift = Drift(spec, self.keep)
        listed = Counter(spec.types)
        self.needed = {t: spec.needed(t) if t in spec.count else n for t, n in listed.items()}
        # A counted type is one entry of the order (its first arrival); a type counted
        # min 0 is optional and has none.
        order: list[str] = []
        for t in spec.types:
            if t in spec.count:
                if self.needed[t] > 0 and t not in order:
                    order.append(t)
            else:
                order.append(t)
        self.order = tuple(order)
        self.paths = candidate_paths(spec)
        self.short = sum(self.needed.values())
        self.split = _split(spec.paths)
        self.split_all = _split(self.paths)
        self.lanes = tuple((path, parts, {}) for path, parts in self.split)
        self.fail_on = frozenset(spec.fail_on)
        self.most = {t: spec.allowed(t) for t in spec.count}
        self.counted = frozenset(spec.count)
        self.unnamed = f"(no {', '.join(spec.paths)})"

    @property
    def complete(self) -> bool:
        return self.short == 0

    def missing(self) -> list[str]:
        """The expected types still short of their count, in the order of ``types``."""
        if self.spec.in_order:
            rest = list(dict.fromkeys(self.order[self.position:]))
            rest += [t for t, n in self.needed.items() if self.arrivals[t] < n and t not in rest]
            return rest
        return [t for t, n in self.needed.items() if self.arrivals[t] < n]

    def still(self) -> str:
        """What is missing, in words: ``b, chunk (1 of 2)``."""
        out = []
        for t in self.missing():
            n = self.needed[t]
            counted = n > 1 and t in self.spec.count
            out.append(f"{t} ({self.arrivals[t]} of {n})" if counted else t)
        return show_types(out)

    def seen_words(self) -> str:
        return self.seen.words()

    def hint(self) -> str | None:
        self.type_held()
        return self.drift.hint(self.missing())

    def frames_seen(self) -> tuple[list[FrameTypes], int]:
        """The first messages with their types under every candidate path (kept), and how
        many more came."""
        self.type_held()
        return self.frames.kept, self.frames.omitted

    def type_held(self) -> None:
        """Type the messages held so far, in order (a failed wait, or the budget ran out)."""
        held, self.held, self.held_bytes = self.held, [], 0
        for data, offset in held:
            self._type(data, offset)

    def _type(self, data: Any, offset: float) -> None:
        arrived = types_under(data, self.paths, round(offset * 1000, 1), self.split_all)
        self.drift.observe(arrived.types)
        self.frames.add(arrived)

    def feed(self, data: Any, offset: float, size: int | None = None) -> Fed:
        """``size``: the message's length as received, which lets it be held untyped."""
        # A stream feeds this event after event: what Frames.add(None) and Seen.add do is
        # inline here, and a counted type's arrivals take the shortest way.
        spec = self.spec
        frames, held = self.frames, self.held
        if frames.count + len(held) >= FRAMES_TYPED:
            frames.count += 1  # past the typed ones: only counted
        elif not self.eager and size is not None and self.held_bytes + size <= HELD_BYTES:
            held.append((data, offset))
            self.held_bytes += size
        else:
            if not self.eager:
                self.eager = True
                self.type_held()
            self._type(data, offset)
        typed = self.typed(data)
        event, spelling = typed.event, typed.spelling
        seen = self.seen
        seen.count += 1
        if len(seen.kept) < EVENTS_SEEN_KEPT:
            seen.kept.append(self.keep.type_name(spelling if spelling is not None
                                                 else self.unnamed))
        fail_on = self.fail_on
        if (fail_on and (spelling in fail_on or (event is not None and event in fail_on))) \
                or (event is None and is_auth_error(data)):
            if is_auth_error(data):
                return Fed(Outcome.AUTH_REJECTED, "the server sent an auth error message "
                           f"(seen: {self.seen_words()})", auth=True)
            return Fed(Outcome.UNEXPECTED_MESSAGE,
                       f"got {spelling}, which is in fail_on (seen: {self.seen_words()})")
        if event is None:
            return _NOTHING
        arrivals = self.arrivals
        n = arrivals[event] + 1
        arrivals[event] = n
        needed = self.needed.get(event, 0)
        if event in self.counted:
            most = self.most[event]  # spec.allowed(event), read once
            if most is not None and n > most:
                return Fed(Outcome.UNEXPECTED_MESSAGE,
                           f"got {event} {n} times, more than its count allows ({most}; "
                           f"seen: {self.seen_words()})")
            if n > needed:
                return _NOTHING  # more than needed, within what its count allows
            if n > 1:
                self.short -= 1
                return self.fed_matched.get(event) or self._matched(event)
        elif n > needed:
            self.duplicates[event] = self.duplicates.get(event, 0) + 1
            if spec.fail_on_duplicates:
                return Fed(Outcome.UNEXPECTED_MESSAGE,
                           f"got {event} again (fail_on_duplicates; seen: "
                           f"{self.seen_words()})")
            return _NOTHING
        if spec.in_order:
            expected = self.order[self.position] if self.position < len(self.order) else None
            if event != expected:
                return Fed(Outcome.UNEXPECTED_MESSAGE,
                           f"got {event} before {expected} (expected order: "
                           f"{show_types(self.order)}; seen: {self.seen_words()})")
            self.position += 1
        # The first arrival of an expected entry: what the event histogram measures.
        self.short -= 1
        self.timings.append((event, offset))
        self.matches.append(EventMatch(event, typed.path or "",
                                       self.keep.type_name(spelling or event)))
        return self._matched(event)

    def _matched(self, event: str) -> Fed:
        fed = self.fed_matched.get(event)
        if fed is None:  # one per expected type: a Fed is immutable
            fed = self.fed_matched[event] = Fed(matched=True, event=event)
        return fed

    def typed(self, data: Any) -> Typed:
        """:func:`classify` of ``data`` under the configured paths (table-tested to agree),
        remembering what each spelling met stands for: a stream names one type in event
        after event."""
        for path, parts, known in self.lanes:
            value = data
            for part in parts:  # lookup_parts, with a JSON object's step inline
                if isinstance(value, dict):
                    value = value.get(part, MISSING)
                else:
                    value = lookup_parts(value, (part,))
                if value is MISSING:
                    break
            if value is MISSING or value is None:
                continue
            if not isinstance(value, str):
                return Typed(path, None, None)
            typed = known.get(value)
            if typed is None:
                typed = Typed(path, value, self.spec.event_of(value))
                if len(known) < SPELLINGS_REMEMBERED:
                    known[value] = typed
            return typed
        return _UNTYPED


__all__ = ["FRAMES_KEPT", "KNOWN_PATHS", "Arrived", "Drift", "EventMatcher", "Fed", "Frames",
           "Seen", "Typed", "Types", "candidate_paths", "classify", "drift_hint",
           "is_auth_error", "show_types", "types_under"]
