"""Recognising agent events in messages whose envelope drifts.

Backends wrap events (``{"type": "system_message", "event": "agent_started", ...}``), rename
them (``agent_start``) or send them twice. An ``expect_events`` step names one dotted path or
a list (the first present in a message wins) and ``aliases``; this module decides, per
message, under which path and spelling an expected event came, and after a failed step
whether the expected events did come, only in another field or under another name.

Pure and table-tested: data in, typed answers out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import ExpectEventsStep
from monitor.jsonpath import MISSING, lookup
from monitor.result import FrameTypes

# Where event types are commonly found, besides the configured paths: a failed step's
# evidence shows every message's value under each of these, so that a drifted envelope is
# visible without guessing.
KNOWN_PATHS: tuple[str, ...] = ("type", "event", "event_type", "name", "data.type",
                                "payload.type", "data.event", "payload.event")
# Frames kept in a failed step's evidence (the transcript keeps the conversation itself).
FRAMES_KEPT = 32
_TYPE_CHARS = 100  # a "type" longer than this is not a type name; cut it in evidence


@dataclass(frozen=True, slots=True)
class Typed:
    """What one message is, for an events step."""

    path: str | None  # the first configured path present in it (None: none is)
    spelling: str | None  # the string there (None: absent or not a string)
    event: str | None  # the expected type it stands for (None: not one of them)


def classify(data: Any, spec: ExpectEventsStep) -> Typed:
    for path in spec.paths:
        value = lookup(data, path)
        if value is MISSING or value is None:
            continue
        if not isinstance(value, str):
            return Typed(path, None, None)
        return Typed(path, value, spec.event_of(value))
    return Typed(None, None, None)


def candidate_paths(spec: ExpectEventsStep) -> tuple[str, ...]:
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


def drift_hint(frames: Sequence[FrameTypes], spec: ExpectEventsStep,
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


__all__ = ["FRAMES_KEPT", "KNOWN_PATHS", "Typed", "candidate_paths", "classify",
           "drift_hint", "types_under"]
