"""The value types of probes.yaml that are not plain YAML: durations and status codes.

Each is parsed from what a person writes (``1m30s``, ``"2xx"``) into what the probes use
(seconds, inclusive ranges), with the JSON Schema an editor checks it by.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any sensible interval, timeout or token lifetime, and far from the limits of
# the scheduler's timedelta arithmetic (a 1e308 s interval would only fail at run time).
MAX_DURATION = 365 * 24 * 3600.0
_VAR_ONLY = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"


def parse_duration(value: object) -> float:
    """``"1m30s"`` → 90.0. Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 5s")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise ValueError("must be a duration of at most 8760h (a year)") from None
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError("must be a duration like 5s")
    else:
        raise ValueError("must be a duration like 5s")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("must be a duration greater than 0, like 5s")
    if seconds > MAX_DURATION:
        raise ValueError("must be a duration of at most 8760h (a year)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                # a unit on every part, and not all zero
                {"type": "string", "pattern": r"^(?=.*[1-9])(\d+(\.\d+)?(ms|s|m|h))+$"},
                # ${VAR} / ${VAR:-default}, substituted at load: editors must accept it
                {"type": "string", "pattern": _VAR_ONLY},
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
            ],
            "description": "a duration like 500ms, 5s, 1m30s (a bare number is seconds)",
        }
    ),
]


_STATUS_CODE = {"type": "integer", "minimum": 100, "maximum": 599}
# 200, 2xx, 200-299 (as _parse_status reads them), or a ${VAR} form
_STATUS_TEXT = {"type": "string",
                "pattern": r"^\s*([1-5][0-9]{2}|[1-5][xX][xX]"
                           r"|[1-5][0-9]{2}\s*-\s*[1-5][0-9]{2})\s*$"
                           r"|^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"}


def _parse_status(value: object) -> tuple[tuple[int, int], ...]:
    items = value if isinstance(value, list | tuple) else [value]
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            ranges.append((item, item))
            continue
        if isinstance(item, str):
            text = item.strip().lower()
            if re.fullmatch(r"[1-5]xx", text):
                base = int(text[0]) * 100
                ranges.append((base, base + 99))
                continue
            m = re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text)
            if m and 100 <= int(m.group(1)) <= int(m.group(2)) <= 599:
                ranges.append((int(m.group(1)), int(m.group(2))))
                continue
            if text.isdigit() and 100 <= int(text) <= 599:
                ranges.append((int(text), int(text)))
                continue
        raise ValueError(
            f"must be status codes like [200, 307], ranges like '200-299' or '2xx'; got {item!r}"
        )
    if not ranges:
        raise ValueError("must list at least one status code")
    return tuple(ranges)


StatusSet = Annotated[
    tuple[tuple[int, int], ...],
    BeforeValidator(_parse_status),
    WithJsonSchema(
        {
            "description": "status codes: 200, '200-299', '2xx', or a list of these",
            "anyOf": [
                _STATUS_CODE,
                _STATUS_TEXT,
                {"type": "array", "minItems": 1, "items": {"anyOf": [_STATUS_CODE, _STATUS_TEXT]}},
            ],
        }
    ),
]


def status_matches(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)
