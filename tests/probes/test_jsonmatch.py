"""JSON subset matching and dotted-path expectations."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.probes.jsonmatch import check_json_paths, lookup, match_subset

HEALTH: dict[str, Any] = {
    "status": "healthy",
    "uptime": 12.5,
    "ready": True,
    "checks": {"postgres": {"status": "ok", "latency_ms": 3}, "redis": {"status": "down"}},
    "items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}],
    "tags": ["x", "y"],
    "nothing": None,
}


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"type": "connect", "id": 1}, {"type": "connect"}),
        ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 1}}}),
        ([{"x": 1, "y": 2}, {"x": 3}], [{"x": 1}, {"x": 3}]),
        (1, 1.0),
        ("s", "s"),
        (None, None),
        ({"data": {"status": "operational", "extra": [1]}}, {"data": {"status": "operational"}}),
        ({}, {}),
    ],
)
def test_subset_matches(actual: Any, expected: Any) -> None:
    assert match_subset(actual, expected) is None


@pytest.mark.parametrize(
    ("actual", "expected", "reason"),
    [
        ({"type": "ping"}, {"type": "connect"}, 'type: expected "connect", got "ping"'),
        ({"a": {}}, {"a": {"b": 1}}, "a.b: missing"),
        ("text", {"a": 1}, "the message: expected an object"),
        ({"l": [1, 2, 3]}, {"l": [1, 2]}, "l: expected 2 items, got 3"),
        ({"l": [{"x": 1}]}, {"l": [{"x": 2}]}, "l.0.x: expected 2, got 1"),
        ({"flag": 1}, {"flag": True}, "flag: expected true, got 1"),
        ({"flag": True}, {"flag": 1}, "flag: expected 1, got true"),
        ({"n": "1"}, {"n": 1}, 'n: expected 1, got "1"'),
        ({"l": "ab"}, {"l": ["a", "b"]}, "l: expected a list"),
    ],
)
def test_subset_mismatch_reasons(actual: Any, expected: Any, reason: str) -> None:
    got = match_subset(actual, expected)
    assert got is not None and got.startswith(reason), got


def test_lookup_paths() -> None:
    assert lookup(HEALTH, "checks.postgres.status") == "ok"
    assert lookup(HEALTH, "items.1.name") == "b"
    assert lookup(HEALTH, "items.-1.n") == 2
    assert lookup(HEALTH, "nothing") is None
    for missing in ("checks.mysql", "items.5.name", "items.x", "status.deeper"):
        assert lookup(HEALTH, missing) is not None  # the sentinel, not a value
        assert check_json_paths(HEALTH, {missing: {"exists": False}}) is None


@pytest.mark.parametrize(
    "expectations",
    [
        {"status": "healthy"},
        {"checks.postgres.status": "ok", "items.0.name": "a"},
        {"checks.postgres": {"status": "ok"}},
        {"uptime": {"gt": 10, "lt": 20}},
        {"uptime": {"ge": 12.5, "le": 12.5}},
        {"checks.postgres.latency_ms": {"lt": 100}},
        {"status": {"eq": "healthy"}},
        {"status": {"ne": "degraded"}},
        {"status": {"regex": "^heal"}},
        {"uptime": {"regex": r"^12\.5$"}},
        {"status": {"contains": "alth"}},
        {"tags": {"contains": "y"}},
        {"items": {"contains": {"name": "b"}}},
        {"checks": {"contains": "redis"}},
        {"checks.redis": {"exists": True}},
        {"checks.mysql": {"exists": False}},
        {"nothing": None},
        {"nothing": {"exists": True}},
        {"ready": True},
        {"status": {"gt": "a"}},
    ],
)
def test_paths_hold(expectations: dict[str, Any]) -> None:
    assert check_json_paths(HEALTH, expectations) is None


@pytest.mark.parametrize(
    ("expectations", "reason"),
    [
        ({"status": "degraded"}, 'status: expected "degraded", got "healthy"'),
        ({"checks.redis.status": "ok"}, 'checks.redis.status: expected "ok", got "down"'),
        ({"checks.mysql.status": "ok"}, "checks.mysql.status: missing"),
        ({"items.9.name": "a"}, "items.9.name: missing"),
        ({"uptime": {"gt": 20}}, "uptime: expected > 20, got 12.5"),
        ({"uptime": {"le": 1}}, "uptime: expected <= 1, got 12.5"),
        ({"status": {"lt": 3}}, "status: lt needs two numbers or two strings"),
        ({"ready": {"gt": 0}}, "ready: gt needs two numbers or two strings"),
        ({"status": {"ne": "healthy"}}, 'status: expected anything but "healthy"'),
        ({"status": {"regex": "^down"}}, "status: expected to match /^down/"),
        ({"tags": {"contains": "z"}}, 'tags: expected to contain "z"'),
        ({"checks.redis": {"exists": False}}, "checks.redis: expected to be absent"),
        ({"checks.mysql": {"exists": True}}, "checks.mysql: missing"),
        ({"checks.mysql": {"regex": "x"}}, "checks.mysql: missing"),
        ({"ready": 1}, "ready: expected 1, got true"),
        ({"checks": {"eq": {"postgres": {"status": "ok"}}}}, "checks: expected"),
        ({"status": {"regex": "("}}, "status: invalid regex"),
    ],
)
def test_paths_fail_with_reason(expectations: dict[str, Any], reason: str) -> None:
    got = check_json_paths(HEALTH, expectations)
    assert got is not None and got.startswith(reason), got


def test_first_failure_is_reported() -> None:
    got = check_json_paths(HEALTH, {"status": "healthy", "checks.redis.status": "ok",
                                    "uptime": {"gt": 100}})
    assert got is not None and got.startswith("checks.redis.status")


def test_non_operator_dict_is_a_subset_expectation() -> None:
    # A dict with an ordinary key beside an operator name is data, not operators.
    data = {"limits": {"gt": 1, "other": 2}}
    assert check_json_paths(data, {"limits": {"gt": 1, "other": 2}}) is None
    # Only operator names: read as operators, so a dict compared with gt is a failure.
    assert check_json_paths(data, {"limits": {"gt": 1}}) is not None


def test_long_values_are_truncated_in_reasons() -> None:
    got = match_subset({"body": "x" * 5000}, {"body": "y"})
    assert got is not None and len(got) < 200
