"""Event matching across envelopes: which path and spelling, and the drift hint."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import ExpectEventsStep
from monitor.keep import Keeper
from monitor.limits import (
    EVENTS_SEEN_KEPT,
    FRAMES_KEPT,
    NEAR_NAMES_KEPT,
    TYPE_CHARS,
    TYPES_LISTED,
)
from monitor.probes.events import (
    Drift,
    Frames,
    Seen,
    candidate_paths,
    classify,
    drift_hint,
    types_under,
)
from monitor.redact import REDACTED, Redactor

TYPES = ("agent_started", "agent_thinking", "agent_completed")


def step(**kw: Any) -> ExpectEventsStep:
    return ExpectEventsStep.model_validate({"types": list(TYPES), **kw})


@pytest.mark.parametrize(("kw", "message", "expected"), [
    ({}, {"type": "agent_started"}, ("type", "agent_started", "agent_started")),
    ({}, {"type": "system_message", "event": "agent_started"},
     ("type", "system_message", None)),
    ({"field": ["event", "type"]}, {"type": "system_message", "event": "agent_started"},
     ("event", "agent_started", "agent_started")),
    ({"field": ["event", "type"]}, {"type": "agent_thinking"},
     ("type", "agent_thinking", "agent_thinking")),
    ({"field": ["event", "type"]}, {"event": None, "type": "agent_thinking"},
     ("type", "agent_thinking", "agent_thinking")),
    ({"field": "payload.kind"}, {"payload": {"kind": "agent_completed"}},
     ("payload.kind", "agent_completed", "agent_completed")),
    ({"aliases": {"agent_started": ["agent_start"]}}, {"type": "agent_start"},
     ("type", "agent_start", "agent_started")),
    ({}, {"type": 7}, ("type", None, None)),
    ({}, {"kind": "agent_started"}, (None, None, None)),
    ({}, ["not", "an", "object"], (None, None, None)),
])
def test_classify(kw: dict[str, Any], message: Any,
                  expected: tuple[str | None, str | None, str | None]) -> None:
    typed = classify(message, step(**kw))
    assert (typed.path, typed.spelling, typed.event) == expected


def frames(spec: ExpectEventsStep, *messages: Any) -> list[Any]:
    paths = candidate_paths(spec)
    return [types_under(m, paths, float(i)) for i, m in enumerate(messages)]


def test_candidate_paths_put_the_configured_ones_first() -> None:
    paths = candidate_paths(step(field=["payload.kind", "type"]))
    assert paths[:2] == ("payload.kind", "type") and "event" in paths
    assert len(paths) == len(set(paths))


def test_hint_for_events_under_another_field() -> None:
    spec = step()
    got = frames(spec, {"type": "connect"},
                 {"type": "system_message", "event": "agent_started"},
                 {"type": "system_message", "event": "agent_completed"})
    hint = drift_hint(got, spec, ["agent_started", "agent_completed"])
    assert hint is not None
    assert "agent_started, agent_completed came under the field 'event'" in hint
    assert "field: [event, type]" in hint


def test_hint_for_events_under_another_name() -> None:
    spec = step()
    got = frames(spec, {"type": "agent_start"}, {"type": "agent_complete"},
                 {"type": "heartbeat"})
    hint = drift_hint(got, spec, ["agent_started", "agent_completed"])
    assert hint is not None
    assert "agent_start (for agent_started)" in hint
    assert "aliases: {agent_started: [agent_start], agent_completed: [agent_complete]}" in hint
    assert "heartbeat" not in hint


def test_no_hint_when_they_did_not_come_at_all() -> None:
    spec = step()
    got = frames(spec, {"type": "agent_started"}, {"type": "agent_thinking"})
    assert drift_hint(got, spec, ["agent_completed"]) is None
    assert drift_hint(got, spec, []) is None


def test_long_values_are_kept_cut_after_redaction_and_absent_paths_marked() -> None:
    """A value is cut to TYPE_CHARS only as it is kept, after redaction: cut before, a
    token's start would no longer be recognised as the token."""
    token = "eyJ" + "t" * 200
    redactor = Redactor()
    redactor.add_token("p", token)
    spec = step()
    [arrived] = frames(spec, {"type": "x" * 500, "event": token})
    assert dict(arrived.types)["type"] == "x" * 500  # as received, until kept
    kept = Frames(Keeper(redactor))
    kept.add(arrived)
    kept.add(arrived)
    types = dict(kept.kept[0].types)
    assert types["type"] == "x" * TYPE_CHARS + "…" and types["event"] == REDACTED
    assert types["payload.type"] is None and len(kept.kept) == 2 and kept.omitted == 0


def test_what_a_step_remembers_is_bounded_however_many_messages_come() -> None:
    spec = step()
    keep = Keeper(Redactor())
    seen, kept, drift = Seen(keep), Frames(keep), Drift(spec, keep)
    for i in range(20_000):
        value = f"agent_start_{i}" if i % 2 else f"{i}-" + "x" * 1000  # near, and long
        arrived = types_under({"type": value}, candidate_paths(spec), float(i))
        seen.add(str(dict(arrived.types)["type"]))
        kept.add(arrived)
        drift.observe(arrived.types)
    assert len(seen.kept) == EVENTS_SEEN_KEPT and seen.omitted == 20_000 - EVENTS_SEEN_KEPT
    assert all(len(t) <= TYPE_CHARS + 1 for t in seen.kept)
    assert seen.words().endswith(f"… and {20_000 - TYPES_LISTED:,} more")
    assert len(kept.kept) == FRAMES_KEPT and kept.omitted == 20_000 - FRAMES_KEPT
    hint = drift.hint(["agent_started"])
    assert hint is not None and hint.count("(for agent_started)") == 1
    assert hint.count("agent_start") <= 2 * NEAR_NAMES_KEPT + 3 and len(hint) < 6000
