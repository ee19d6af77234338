"""JSON expectations shared by the HTTP and WebSocket probes.

Both functions return ``None`` when the data matches and otherwise one short reason in
plain words, meant for ``Evidence.detail``. The reasons quote (truncated) values from the
answer; callers pass them through the redactor like any other evidence.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from monitor.jsonpath import MISSING, lookup

OPERATORS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "contains", "regex", "exists"})

_SHOW = 80  # characters of a value quoted in a reason


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


def _is_number(value: Any) -> bool:
    # bool is an int in Python but never a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar_equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    return type(actual) is type(expected) and bool(actual == expected)


def match_subset(actual: Any, expected: Any, _path: str = "") -> str | None:
    """``None`` if ``actual`` contains ``expected``, else where and why it does not.

    Objects: every expected key must be present and match recursively; extra keys are
    fine. Lists: same length, element ``i`` of ``actual`` must contain element ``i`` of
    ``expected`` (order matters, because event and item order is usually meaningful).
    Scalars: equal, with ``true`` never equal to ``1``.
    """
    where = _path or "the message"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {_show(actual)}"
        for key, value in expected.items():
            child = f"{_path}.{key}" if _path else str(key)
            if key not in actual:
                return f"{child}: missing"
            reason = match_subset(actual[key], value, child)
            if reason is not None:
                return reason
        return None
    if isinstance(expected, list | tuple):
        if not isinstance(actual, list | tuple):
            return f"{where}: expected a list, got {_show(actual)}"
        if len(actual) != len(expected):
            return f"{where}: expected {len(expected)} items, got {len(actual)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            reason = match_subset(a, e, f"{_path}.{i}" if _path else str(i))
            if reason is not None:
                return reason
        return None
    if not _scalar_equal(actual, expected):
        return f"{where}: expected {_show(expected)}, got {_show(actual)}"
    return None


def _deep_equal(a: Any, b: Any) -> bool:
    # Containment both ways is equality, with match_subset's strict bool/number rules.
    return match_subset(a, b) is None and match_subset(b, a) is None


def is_operator_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k in OPERATORS for k in value)


def _compare(op: str, actual: Any, operand: Any) -> str | None:
    if not (_is_number(actual) and _is_number(operand)) and not (
        isinstance(actual, str) and isinstance(operand, str)
    ):
        return f"{op} needs two numbers or two strings, got {_show(actual)} and {_show(operand)}"
    if isinstance(actual, float) and math.isnan(actual):
        return f"got NaN, not {op} {_show(operand)}"
    ok = {
        "lt": actual < operand,
        "le": actual <= operand,
        "gt": actual > operand,
        "ge": actual >= operand,
    }[op]
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    return None if ok else f"expected {symbol} {_show(operand)}, got {_show(actual)}"


def _apply(op: str, actual: Any, operand: Any) -> str | None:
    """One operator on a present value; None when it holds."""
    if op == "eq":
        return None if _deep_equal(actual, operand) else (
            f"expected {_show(operand)}, got {_show(actual)}"
        )
    if op == "ne":
        return f"expected anything but {_show(operand)}" if _deep_equal(actual, operand) else None
    if op in ("lt", "le", "gt", "ge"):
        return _compare(op, actual, operand)
    if op == "contains":
        if isinstance(actual, str):
            if isinstance(operand, str) and operand in actual:
                return None
        elif isinstance(actual, list):
            if any(match_subset(item, operand) is None for item in actual):
                return None
        elif isinstance(actual, dict):
            if isinstance(operand, str) and operand in actual:
                return None
        else:
            return f"contains needs a string, list or object, got {_show(actual)}"
        return f"expected to contain {_show(operand)}, got {_show(actual)}"
    if op == "regex":
        if not isinstance(operand, str):
            return f"regex must be a string, got {_show(operand)}"
        if isinstance(actual, dict | list):
            return f"regex needs a string, got {_show(actual)}"
        text = actual if isinstance(actual, str) else _show(actual)
        try:
            found = re.search(operand, text) is not None
        except re.error as exc:
            return f"invalid regex {_show(operand)}: {exc}"
        return None if found else f"expected to match /{operand}/, got {_show(actual)}"
    raise AssertionError(op)  # pragma: no cover - OPERATORS is closed


def check_json_paths(data: Any, expectations: dict[str, Any]) -> str | None:
    """Check every ``dotted.path: expectation``; the first failure as a reason, or None.

    An expectation is an operator object (``{gt: 3}``, ``{regex: "^ok"}``, ``{exists:
    false}``, several operators must all hold), an object or list (the value must contain
    it, as in :func:`match_subset`), or a scalar (equality).
    """
    for path, expected in expectations.items():
        actual = lookup(data, path)
        if is_operator_dict(expected):
            if "exists" in expected:
                want = bool(expected["exists"])
                if want and actual is MISSING:
                    return f"{path}: missing"
                if not want and actual is not MISSING:
                    return f"{path}: expected to be absent, got {_show(actual)}"
            for op, operand in expected.items():
                if op == "exists":
                    continue
                if actual is MISSING:
                    return f"{path}: missing"
                reason = _apply(op, actual, operand)
                if reason is not None:
                    return f"{path}: {reason}"
            continue
        if actual is MISSING:
            return f"{path}: missing"
        reason = match_subset(actual, expected, path)
        if reason is not None:
            return reason
    return None


__all__ = ["OPERATORS", "check_json_paths", "is_operator_dict", "lookup", "match_subset"]
