"""The value types of probes.yaml that are not plain YAML: durations and status codes.

Each is parsed from what a person writes (``1m30s``, ``"2xx"``) into what the probes use
(seconds, inclusive ranges), with the JSON Schema an editor checks it by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from monitor.durations import MAX_DURATION, format_duration, parse_duration

_VAR_ONLY = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"

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


MAX_RETRIES = 5  # a retry confirms a failure; more of them only delay the page
# The longest a run may take with all its retries, in words and as a number: it must stay
# under the interval so that retries never overlap the next scheduled run.
RETRY_BUDGET_WORDS = "timeout x (retries + 1) + retry_delay x retries"


def retry_budget(timeout: float, retries: int, retry_delay: float) -> float:
    """:data:`RETRY_BUDGET_WORDS` as a number of seconds."""
    return timeout * (retries + 1) + retry_delay * retries


def parse_retries(value: object) -> int:
    """How many times a failed run is tried again: 0 to 5 (``"1"`` from a ${VAR} too)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ValueError(f"must be a whole number from 0 to {MAX_RETRIES}")
    return value


Retries = Annotated[
    int,
    BeforeValidator(parse_retries),
    WithJsonSchema({
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_RETRIES},
                  # as ${VAR} substitutes it, and the ${VAR} form itself
                  {"type": "string", "pattern": rf"^\s*[0-{MAX_RETRIES}]\s*$"
                                                r"|^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"}],
        "description": f"0 to {MAX_RETRIES}",
    }),
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
