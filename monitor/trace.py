"""W3C trace context (https://www.w3.org/TR/trace-context/) for one probe run.

Each run gets a fresh trace id and the span id of the run's client span; every request the
run makes carries them in ``traceparent`` (sampled), so the backend's logs and traces of
*that* request can be found from the run's Result. Pure values only: nothing here does I/O.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from monitor.frozen import fast_init

SAMPLED = "01"
# What a run may substitute into what it sends (``${trace_id}`` ...): the one list, which
# the config loader leaves alone for the run to fill in (monitor.config.env).
RUN_VARIABLES: tuple[str, ...] = ("trace_id", "span_id", "traceparent")
# tracestate: at most 32 list members "key=value", 512 characters in all (W3C 3.3).
_TS_KEY = r"(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
_TS_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TS_MEMBER = re.compile(rf"^{_TS_KEY}={_TS_VALUE}$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@fast_init
@dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace of one run: its id and the span id of the run's client span."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero
    tracestate: str | None = None

    @classmethod
    def new(cls, tracestate: str | None = None) -> TraceContext:
        # Both ids from one draw of 192 bits (as random as two draws, for a run's price of
        # one): the trace id its first 128, the span id its last 64.
        while True:
            # The bytes' hex is the number's 48 hex digits, zero-padded, for a third less
            # than a format spec.
            digits = random.getrandbits(192).to_bytes(24, "big").hex()
            trace_id, span_id = digits[:32], digits[32:]
            if trace_id != _ZERO_TRACE and span_id != _ZERO_SPAN:  # W3C 3.2.2.3/3.2.2.4
                return cls(trace_id, span_id, tracestate)

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{SAMPLED}"

    def headers(self) -> dict[str, str]:
        """The headers every request of the run carries."""
        if self.tracestate:
            return {"traceparent": self.traceparent(), "tracestate": self.tracestate}
        return {"traceparent": self.traceparent()}

    def variables(self) -> dict[str, str]:
        """What a ``send`` step may substitute: ``${trace_id}``, ``${span_id}``,
        ``${traceparent}``."""
        values = (self.trace_id, self.span_id, self.traceparent())
        return dict(zip(RUN_VARIABLES, values, strict=True))


def random_id(nbytes: int) -> int:
    """A random id of ``nbytes`` bytes as a number, never zero."""
    # random, not os.urandom: ids must be unique, not secret (W3C 3.2.2.3 asks for
    # randomness, as OpenTelemetry's RandomIdGenerator gives it), and a system call per id
    # was a measurable part of what trace context costs a run.
    while True:
        value = random.getrandbits(nbytes * 8)
        if value:  # all zeros is the one invalid id (W3C 3.2.2.3/3.2.2.4)
            return value


def _random_hex(nbytes: int) -> str:
    return f"{random_id(nbytes):0{nbytes * 2}x}"


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace_id, parent_id, flags) of a version-00 ``traceparent``, or None if invalid."""
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    trace_id, parent_id, flags = match.groups()
    if set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id, parent_id, flags


def tracestate_problem(value: str) -> str | None:
    """Why ``value`` is not a valid ``tracestate`` header, or None if it is."""
    if len(value) > 512:
        return "is longer than 512 characters"
    members = [m.strip() for m in value.split(",")]
    members = [m for m in members if m]
    if not members:
        return "has no list member (key=value)"
    if len(members) > 32:
        return "has more than 32 list members"
    keys: set[str] = set()
    for member in members:
        if not _TS_MEMBER.match(member):
            return (f"member {member[:60]!r} is not key=value (lowercase key, printable "
                    "value without ',' or '=')")
        key = member.split("=", 1)[0]
        if key in keys:
            return f"key {key!r} appears twice"
        keys.add(key)
    return None


def substitute(template: str, variables: dict[str, str]) -> str:
    """``${trace_id}``, ``${span_id}`` and ``${traceparent}`` in ``template`` replaced; any
    other ``${...}`` is left as written (the config loader has already substituted the
    environment's)."""
    if "${" not in template:
        return template
    for name, value in variables.items():
        template = template.replace("${" + name + "}", value)
    return template


__all__ = ["RUN_VARIABLES", "TraceContext", "parse_traceparent", "random_id", "substitute",
           "tracestate_problem"]
