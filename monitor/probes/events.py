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

Pure and table-tested: data in, typed answers out.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.config import ExpectEvents
from monitor.jsonpath import MISSING, lookup, lookup_parts
from monitor.outcomes import Outcome
from monitor.result import EventMatch, FrameTypes

# Where event types are commonly found, besides the configured paths: a failed step's
# evidence shows every message's value under each of these, so that a drifted envelope is
# visible without guessing.
KNOWN_PATHS: tuple[str, ...] = ("type", "event", "event_type", "name", "data.type",
                                "payload.type", "data.event", "payload.event")
# Frames kept in a failed step's evidence (the transcript keeps the conversation itself).
FRAMES_KEPT = 32
# Messages typed under every candidate path for the drift hint, and names kept in the
# ``events_seen`` evidence: a stream of thousands of chunks costs no more than this.
FRAMES_TYPED = 256
SEEN_KEPT = 64
_AUTH_CODE = re.compile(r"auth", re.IGNORECASE)
_TYPE_CHARS = 100  # a "type" longer than this is not a type name; cut it in evidence


@dataclass(frozen=True, slots=True)
class Typed:
    """What one message is, for an events step."""

    path: str | None  # the first configured path present in it (None: none is)
    spelling: str | None  # the string there (None: absent or not a string)
    event: str | None  # the expected type it stands for (None: not one of them)


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


def types_under(data: Any, paths: Sequence[str], offset_ms: float) -> FrameTypes:
    """The string under each candidate path (None where there is none)."""
    out: list[tuple[str, str | None]] = []
    for path in paths:
        value = lookup(data, path)
        out.append((path, value[:_TYPE_CHARS] if isinstance(value, str) else None))
    return FrameTypes(offset_ms, tuple(out))


def _near(value: str, wanted: Iterable[str]) -> str | None:
    """The expected type ``value`` is most likely a spelling of (agent_start →
    agent_started), or None."""
    wanted = list(wanted)
    for kind in wanted:
        if kind.startswith(value) or value.startswith(kind):
            return kind
    found = difflib.get_close_matches(value, wanted, n=1, cutoff=0.8)
    return found[0] if found else None


def drift_hint(frames: Sequence[FrameTypes], spec: ExpectEvents,
               missing: Sequence[str]) -> str | None:
    """Plain words when the missing events did arrive, under another field or name."""
    if not missing:
        return None
    other_field: dict[str, list[str]] = {}
    other_name: dict[str, str] = {}
    for frame in frames:
        values = dict(frame.types)
        used = next((p for p in spec.paths if values.get(p) is not None), None)
        for path, value in frame.types:
            if value is None:
                continue
            event = spec.event_of(value)
            if event is not None and event in missing and path != used:
                seen = other_field.setdefault(path, [])
                if event not in seen:
                    seen.append(event)
            elif event is None and path == used:
                near = _near(value, missing)
                if near is not None and value not in other_name:
                    other_name[value] = near
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
    """

    spec: ExpectEvents
    step: str = ""  # the label event timings are reported under
    seen: list[str] = field(default_factory=list)  # what each message was, as named
    seen_omitted: int = 0
    # The first FRAMES_TYPED messages as fed, typed under every candidate path only when a
    # failed wait asks (:attr:`frames`): a passing stream of thousands of chunks never is.
    fed: list[tuple[Any, float]] = field(default_factory=list)
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

    def __post_init__(self) -> None:
        spec = self.spec
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

    @property
    def complete(self) -> bool:
        return self.short == 0

    @property
    def frames(self) -> list[FrameTypes]:
        """What each of the first messages carried under every candidate path."""
        return [types_under(data, self.paths, round(offset * 1000, 1))
                for data, offset in self.fed]

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
        more = f", … {self.seen_omitted} more" if self.seen_omitted else ""
        return show_types(self.seen) + more

    def hint(self) -> str | None:
        missing = self.missing()
        return drift_hint(self.frames, self.spec, missing) if missing else None

    def feed(self, data: Any, offset: float) -> Fed:
        spec = self.spec
        if len(self.fed) < FRAMES_TYPED:
            self.fed.append((data, offset))
        typed = classify(data, spec, self.split)
        event, spelling = typed.event, typed.spelling
        name = spelling if spelling is not None else f"(no {', '.join(spec.paths)})"
        if len(self.seen) < SEEN_KEPT:
            self.seen.append(name)
        else:
            self.seen_omitted += 1
        listed = spelling in spec.fail_on or (event is not None and event in spec.fail_on)
        if listed or (event is None and is_auth_error(data)):
            if is_auth_error(data):
                return Fed(Outcome.AUTH_REJECTED, "the server sent an auth error message "
                           f"(seen: {self.seen_words()})", auth=True)
            return Fed(Outcome.UNEXPECTED_MESSAGE,
                       f"got {spelling}, which is in fail_on (seen: {self.seen_words()})")
        if event is None:
            return _NOTHING
        self.arrivals[event] += 1
        n = self.arrivals[event]
        most = spec.allowed(event)
        if most is not None and n > most:
            return Fed(Outcome.UNEXPECTED_MESSAGE,
                       f"got {event} {n} times, more than its count allows ({most}; seen: "
                       f"{self.seen_words()})")
        if n > self.needed.get(event, 0):
            if event in spec.count:
                return _NOTHING  # more than needed, within what its count allows
            self.duplicates[event] = self.duplicates.get(event, 0) + 1
            if spec.fail_on_duplicates:
                return Fed(Outcome.UNEXPECTED_MESSAGE,
                           f"got {event} again (fail_on_duplicates; seen: "
                           f"{self.seen_words()})")
            return _NOTHING
        if event in spec.count and n > 1:
            if n <= self.needed[event]:
                self.short -= 1
            return Fed(matched=True, event=event)
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
        self.matches.append(EventMatch(event, typed.path or "", spelling or event))
        return Fed(matched=True, event=event)


__all__ = ["FRAMES_KEPT", "KNOWN_PATHS", "EventMatcher", "Fed", "Typed", "candidate_paths",
           "classify", "drift_hint", "is_auth_error", "show_types", "types_under"]
