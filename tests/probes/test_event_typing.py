"""The matcher's typing of a message (``EventMatcher.typed``, which remembers what each
spelling stands for) agrees with :func:`classify` (the general path, from the spec alone)
over a table of specs and hostile messages, on first sight and on every repeat, and what it
remembers stays bounded however many spellings a server invents."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import ExpectEvents
from monitor.probes.events import SPELLINGS_REMEMBERED, EventMatcher, classify

SPECS: list[dict[str, Any]] = [
    {"types": ["a", "b"]},
    {"types": ["a"], "field": ["event", "type"]},
    {"types": ["chat.completion.chunk"], "field": ["event", "data.object"]},
    {"types": ["agent_started"], "aliases": {"agent_started": ["agent_start", "started"]}},
    {"types": ["a"], "field": ["items.0.type", "type"]},
    {"types": ["a"], "fail_on": ["b"]},
]

MESSAGES: list[Any] = [
    {"type": "a"}, {"type": "b"}, {"type": "c"}, {"type": None}, {"type": 7}, {"type": ["a"]},
    {"type": {"a": 1}}, {"type": ""}, {"type": True}, {}, [], [{"type": "a"}], "text", None, 7,
    {"event": "a", "type": "b"}, {"event": None, "type": "a"}, {"event": 1, "type": "a"},
    {"event": None, "data": {"object": "chat.completion.chunk"}, "id": None},
    {"event": None, "data": "not json", "id": None}, {"event": None, "data": None},
    {"event": "x", "data": {"object": "chat.completion.chunk"}},
    {"data": [{"object": "chat.completion.chunk"}]}, {"data": {"object": 3}},
    {"type": "agent_start"}, {"type": "started"}, {"type": "agent_started"},
    {"items": [{"type": "a"}]}, {"items": []}, {"items": "ab"}, {"items": [None]},
    {"type": "x" * 100_000}, {"type": "a\x1b[2J"}, {"type": "\ufeffa"}, {"type": "é"},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: str(s)[:40])
def test_typed_agrees_with_classify(spec: dict[str, Any]) -> None:
    events = ExpectEvents.model_validate(spec)
    matcher = EventMatcher(events)
    for _ in range(2):  # first sight, then from what the matcher remembers
        for message in MESSAGES:
            assert matcher.typed(message) == classify(message, events), message


def test_what_it_remembers_is_bounded() -> None:
    events = ExpectEvents.model_validate({"types": ["a"]})
    matcher = EventMatcher(events)
    for i in range(SPELLINGS_REMEMBERED * 4):
        message = {"type": f"new-{i}"}
        assert matcher.typed(message) == classify(message, events)
    assert matcher.typed({"type": "a"}) == classify({"type": "a"}, events)
    assert all(len(known) <= SPELLINGS_REMEMBERED for _, _, known in matcher.lanes)


def test_a_match_answers_alike_each_time() -> None:
    """The answer to a match is shared per type (it is immutable): equal to a new one."""
    matcher = EventMatcher(ExpectEvents.model_validate(
        {"types": ["chunk"], "count": {"chunk": 3}}))
    fed = [matcher.feed({"type": "chunk"}, 0.1 * i) for i in range(3)]
    assert all(f.matched and f.event == "chunk" and f.outcome is None for f in fed)
    assert matcher.complete
