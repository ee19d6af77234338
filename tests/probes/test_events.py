"""Event matching across envelopes: which path and spelling, and the drift hint."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import ExpectEventsStep
from monitor.probes.events import candidate_paths, classify, drift_hint, types_under

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


def test_types_under_cuts_long_values_and_marks_absent_paths() -> None:
    [f] = frames(step(), {"type": "x" * 500})
    types = dict(f.types)
    assert types["type"] == "x" * 100 and types["event"] is None
