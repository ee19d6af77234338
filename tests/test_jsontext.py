"""monitor.jsontext.loads reads every text as json.loads does: the same value, or the same
error in the same words. Its short cut (an object or array asked of the C scanner
directly) and the general path (json.loads) meet over hostile texts too."""

from __future__ import annotations

import json
import math

import pytest

from monitor.jsontext import loads

TEXTS = [
    '{"object": "chat.completion.chunk", "choices": [{"delta": {"content": "x"}}]}',
    "[1, 2.5, -3e2, true, false, null]", "{}", "[]", '"a string"', "7", "null", "true",
    ' {"padded": 1} ', '{"a": 1}\n', "\n[1]", "\ufeff{}", '{"a": 1}x', '{"a": 1}{"b": 2}',
    '{"a": }', "[1,]", "[", "{", "}", "]", "{]", "[}", "", " ", "data", "[DONE]",
    '{"a": 1, "a": 2}', '{"n": NaN, "i": Infinity, "m": -Infinity}', "[NaN]",
    '{"big": 123456789012345678901234567890}', '{"s": "\\ud800"}', '{"s": "\\u00e9\\n"}',
    '{"s": "é€😀"}', '{"s": "\x01"}', '{"s": "a\\x"}', "[1 2]", "{'a': 1}",
    "[" * 50 + "]" * 50, "[" * 50 + "]" * 49, '{"a": [1, {"b": [2, {"c": }]}]}',
    '{"pad": "' + "x" * 300_000 + '"}', "[" + "1," * 10_000 + "1]",
]


def outcome(read: object, text: str) -> tuple[str, object]:
    try:
        value = read(text)  # type: ignore[operator]
    except ValueError as exc:
        return type(exc).__name__, str(exc)
    return "value", value


def same(a: object, b: object) -> bool:
    """Equal, NaN included (NaN != NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: repr(t[:24]))
def test_reads_as_json_loads(text: str) -> None:
    ours, theirs = outcome(loads, text), outcome(json.loads, text)
    assert ours[0] == theirs[0] and same(ours[1], theirs[1])


def test_the_table_takes_both_paths_and_both_answers() -> None:
    answers = {outcome(json.loads, t)[0] for t in TEXTS}
    assert answers == {"value", "JSONDecodeError"}
    assert any(t[:1] in "{[" and t[-1:] in "}]" for t in TEXTS)  # the short cut
    assert any(t[:1] not in "{[" for t in TEXTS)  # json.loads itself


def test_too_deep_fails_as_json_loads_does() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        loads(deep)
