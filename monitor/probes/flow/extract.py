"""A flow step's values taken from its answers (``extract:``), as pure functions of the
spec and the :class:`~monitor.probes.answer.Answer`: a JSON path, a header's value, or the
one group of a regular expression (on the body, or on a header's value).

A step may receive several answers (a WebSocket step: the handshake's headers, then each
message its ``expect`` steps matched): each value is taken from the first answer that has
it. A value that no answer had fails the step with ``assertion_failed``, saying why (never
the value). Values are strings; a JSON value keeps its own type too (:attr:`Value.raw`), so
that a JSON body that is nothing but ``"${steps.STEP.NAME}"`` sends a number as a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from monitor.config.schema.extract import Extract, secret_value
from monitor.jsonpath import MISSING, lookup
from monitor.probes.answer import Answer

MAX_VALUE: Final = 16 * 1024  # a value longer than this is refused, not cut
# The most of a body searched or parsed: answers are bounded before they get here, and a
# user's regex over a hostile megabyte is the cost to bound.
MAX_SOURCE: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Value:
    """One extracted value."""

    text: str  # what ${steps.STEP.NAME} is replaced with
    raw: Any  # the JSON value (by a json path), else the text
    secret: bool


def _text(body: str | bytes | bytearray) -> str:
    if isinstance(body, str):
        return body[:MAX_SOURCE]
    return bytes(body[:MAX_SOURCE]).decode("utf-8", "replace")


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def extract_one(name: str, spec: Extract, answer: Answer) -> Value | str:
    """The value ``name`` from ``answer``, or why it is not there."""
    secret = secret_value(name, spec)
    raw: Any
    if spec.header is not None:
        found = _header(answer.headers, spec.header)
        if found is None:
            return f"the answer has no {spec.header} header"
        if spec.regex is None:
            raw = found
        else:
            m = re.search(spec.regex, found[:MAX_SOURCE])
            if m is None or m.group(1) is None:
                return f"regex {spec.regex!r} does not match the {spec.header} header"
            raw = m.group(1)
    elif answer.body is None or len(answer.body) == 0:
        return "the answer has no body"
    elif spec.regex is not None:
        m = re.search(spec.regex, _text(answer.body))
        if m is None or m.group(1) is None:
            return f"regex {spec.regex!r} does not match the body"
        raw = m.group(1)
    else:
        assert spec.json_ is not None
        try:
            data = json.loads(_text(answer.body))
        except ValueError:
            return "the body is not JSON"
        raw = lookup(data, spec.json_)
        if raw is MISSING:
            return f"the JSON has no {spec.json_}"
        if raw is None:
            return f"{spec.json_} is null"
    text = _as_text(raw)
    if len(text) > MAX_VALUE:
        return f"the value is longer than {MAX_VALUE // 1024} KiB"
    if text == "":
        return "the value is empty"
    return Value(text, raw, secret)


class Extraction:
    """The values of one step, filled in as its answers arrive."""

    __slots__ = ("_why", "specs", "values")

    def __init__(self, specs: Mapping[str, Extract]) -> None:
        self.specs = specs
        self.values: dict[str, Value] = {}
        self._why: dict[str, str] = {}

    def feed(self, answer: Answer) -> dict[str, Value]:
        """Try every value not found yet on ``answer``; the values it gave, by name."""
        new: dict[str, Value] = {}
        for name, spec in self.specs.items():
            if name in self.values:
                continue
            got = extract_one(name, spec, answer)
            if isinstance(got, Value):
                self.values[name] = new[name] = got
            elif name not in self._why or _tells_more(spec, answer):
                self._why[name] = got
        return new

    def missing(self) -> list[tuple[str, str]]:
        """(name, why) of every value no answer had, in the order declared."""
        return [(name, self._why.get(name, "the step got no answer"))
                for name in self.specs if name not in self.values]


def _tells_more(spec: Extract, answer: Answer) -> bool:
    """Whether a failure on this answer says more than the one kept: a header source on an
    answer with headers, a body source on one with a body (a WebSocket step's handshake has
    headers and no body, its messages the other way round)."""
    return bool(answer.headers) if spec.header is not None else bool(answer.body)


__all__ = ["MAX_VALUE", "Extraction", "Value", "extract_one"]
