"""The event matcher, apart from any socket: messages fed in order, the decision after each.

One table over the ``expect_events`` vocabulary (types, in_order, field paths, aliases,
fail_on, fail_on_duplicates, count); a WebSocket step and a stream both feed this matcher,
so a row here holds for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from monitor.config import ExpectEvents
from monitor.outcomes import Outcome
from monitor.probes.events import EventMatcher


@dataclass(frozen=True)
class Row:
    name: str
    spec: dict[str, Any]
    messages: tuple[Any, ...]
    outcome: Outcome | None  # None: no message ended the wait
    complete: bool = False
    detail: str = ""  # a fragment of the failure's detail
    duplicates: dict[str, int] | None = None


def ev(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, **more}


ROWS = [
    Row("all in order", {"types": ["a", "b"]}, (ev("a"), ev("x"), ev("b")), None, True),
    Row("out of order", {"types": ["a", "b"]}, (ev("b"),), Outcome.UNEXPECTED_MESSAGE,
        detail="got b before a"),
    Row("any order", {"types": ["a", "b"], "in_order": False}, (ev("b"), ev("a")), None,
        True),
    Row("still missing", {"types": ["a", "b"]}, (ev("a"), ev("x")), None, False),
    Row("fail_on", {"types": ["a"], "fail_on": ["agent_failed"]}, (ev("agent_failed"),),
        Outcome.UNEXPECTED_MESSAGE, detail="in fail_on"),
    Row("auth error message", {"types": ["a"]},
        ({"type": "error_message", "error_code": "AUTH_FAILED"},), Outcome.AUTH_REJECTED,
        detail="auth error message"),
    Row("duplicate counted", {"types": ["a", "b"]}, (ev("a"), ev("a"), ev("b")), None, True,
        duplicates={"a": 1}),
    Row("duplicate fails", {"types": ["a", "b"], "fail_on_duplicates": True},
        (ev("a"), ev("a")), Outcome.UNEXPECTED_MESSAGE, detail="again"),
    Row("listed twice", {"types": ["a", "b", "a"]}, (ev("a"), ev("b"), ev("a")), None, True),
    Row("alias", {"types": ["agent_started"], "aliases": {"agent_started": ["agent_start"]}},
        (ev("agent_start"),), None, True),
    Row("field list", {"types": ["a"], "field": ["event", "type"]},
        ({"type": "system_message", "event": "a"},), None, True),
    Row("count min not reached", {"types": ["chunk"], "count": {"chunk": {"min": 3}}},
        (ev("chunk"), ev("chunk")), None, False),
    Row("count min reached", {"types": ["chunk"], "count": {"chunk": 3}},
        (ev("chunk"), ev("chunk"), ev("chunk")), None, True),
    Row("count beyond min is no duplicate",
        {"types": ["chunk", "done"], "count": {"chunk": 2}, "fail_on_duplicates": True},
        (ev("chunk"), ev("chunk"), ev("chunk"), ev("done")), None, True, duplicates={}),
    Row("count max exceeded", {"types": ["chunk"], "count": {"chunk": {"min": 1, "max": 2}}},
        (ev("chunk"), ev("chunk"), ev("chunk")), Outcome.UNEXPECTED_MESSAGE,
        detail="more than its count allows (2"),
    Row("in order judges a counted type's first arrival",
        {"types": ["start", "chunk", "stop"], "count": {"chunk": 2}},
        (ev("start"), ev("chunk"), ev("chunk"), ev("stop")), None, True),
    Row("a counted type may repeat after the next one",
        {"types": ["chunk", "stop"], "count": {"chunk": 2}},
        (ev("chunk"), ev("stop"), ev("chunk")), None, True),
    Row("optional type (min 0) is never out of order",
        {"types": ["a", "ping", "b"], "count": {"ping": {"min": 0, "max": 5}}},
        (ev("ping"), ev("a"), ev("ping"), ev("b")), None, True),
    Row("not an object", {"types": ["a"]}, (["a"], "text", 7), None, False),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_matcher(row: Row) -> None:
    matcher = EventMatcher(ExpectEvents.model_validate(row.spec))
    ended = None
    for i, message in enumerate(row.messages):
        fed = matcher.feed(message, i * 0.1)
        if fed.outcome is not None:
            ended = fed
            break
    assert (ended.outcome if ended else None) is row.outcome
    if ended is not None:
        assert row.detail in ended.detail
    else:
        assert matcher.complete is row.complete
    if row.duplicates is not None:
        assert matcher.duplicates == row.duplicates


def test_timings_are_first_arrivals_with_their_offsets() -> None:
    spec = ExpectEvents.model_validate({"types": ["start", "chunk", "stop"],
                                        "count": {"chunk": {"min": 2}}})
    matcher = EventMatcher(spec)
    for i, kind in enumerate(["start", "chunk", "chunk", "chunk", "stop"]):
        assert matcher.feed(ev(kind), float(i)).outcome is None
    assert matcher.timings == [("start", 0.0), ("chunk", 1.0), ("stop", 4.0)]
    assert [m.event for m in matcher.matches] == ["start", "chunk", "stop"]


def test_what_is_missing_is_said_with_counts() -> None:
    spec = ExpectEvents.model_validate({"types": ["start", "chunk", "stop"],
                                        "count": {"chunk": {"min": 3}}})
    matcher = EventMatcher(spec)
    for kind in ("start", "chunk"):
        matcher.feed(ev(kind), 0.0)
    matcher.feed(ev("chunk"), 0.0)
    assert matcher.still() == "stop, chunk (2 of 3)"


def test_what_was_seen_is_bounded() -> None:
    matcher = EventMatcher(ExpectEvents.model_validate({"types": ["never"]}))
    for i in range(1000):
        matcher.feed(ev(f"other-{i % 3}"), i / 1000)
    assert len(matcher.seen.kept) == 64 and matcher.seen.omitted == 936
    assert matcher.seen_words().endswith("… and 980 more")  # the first 20 named
    assert len(matcher.frames.kept) == 32 and matcher.frames.omitted == 968


@pytest.mark.parametrize(("spec", "problem"), [
    ({"types": ["a"], "count": {"b": 2}}, "'b' is not in types"),
    ({"types": ["a"], "aliases": {"b": ["c"]}}, "'b' is not in types"),
])
def test_count_and_aliases_name_expected_types(spec: dict[str, Any], problem: str) -> None:
    problems = ExpectEvents.model_validate(spec).problems()
    assert problems and problem in problems[0][1]


def test_count_max_below_min_is_refused() -> None:
    with pytest.raises(ValueError, match="max \\(1\\) is below min \\(2\\)"):
        ExpectEvents.model_validate({"types": ["a"], "count": {"a": {"min": 2, "max": 1}}})


def test_small_messages_are_held_untyped_until_a_failed_wait_asks() -> None:
    """A passing stream of small chunks is never typed under every candidate path; a
    failed wait gets the same frames, in order, as if they had been typed on arrival; large
    messages are typed as they come and never held (a flood of them costs no memory)."""
    spec = ExpectEvents.model_validate({"types": ["never"]})
    lazy, eager = EventMatcher(spec), EventMatcher(spec)
    for i in range(40):
        lazy.feed(ev(f"t{i}"), i / 1000, size=20)
        eager.feed(ev(f"t{i}"), i / 1000)
    assert len(lazy.held) == 40 and lazy.frames.count == 0  # nothing typed yet
    assert lazy.frames_seen() == eager.frames_seen()
    assert lazy.held == [] and lazy.frames_seen()[1] == 40 - 32
    assert lazy.hint() == eager.hint()
    big = EventMatcher(spec)
    for i in range(10):
        big.feed(ev(f"b{i}"), 0.0, size=40_000)  # past HELD_BYTES after the first
    assert big.eager and len(big.held) == 0 and big.frames.count == 10
