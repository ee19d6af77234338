"""How an HTTP probe's answer is judged, from plain values only: the status, the body
read (and whether it was cut at ``max_body_bytes``), the headers and the latency in, an
outcome and its words out. A negative probe's answer is read by
:func:`monitor.probes.refusal.http_reading`. No sockets, no clock; table-tested.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from monitor.config import HttpExpect, HttpSpec, status_matches
from monitor.durations import format_duration, ms
from monitor.frozen import fast_init
from monitor.keep import Keeper
from monitor.outcomes import Outcome
from monitor.probes.jsonmatch import check_json_paths
from monitor.probes.memo import SpecMemo
from monitor.probes.refusal import http_reading
from monitor.redact import Redactor
from monitor.targets import target_of


@fast_init
@dataclass(frozen=True, slots=True)
class Channel:
    """How the final answer came: its HTTP version, and from which URL (TLS or not; as
    aiohttp has it, made a string only when ``expect.tls`` asks)."""

    version: str | None
    url: str | URL
    redirected: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class Judged:
    outcome: Outcome
    detail: str
    hint: str | None = None


def judge(spec: HttpSpec, variant: str | None, status: int, body: bytes, truncated: bool,
          headers: CIMultiDict[str], latency: float, redactor: Redactor,
          channel: Channel) -> Judged:
    """The verdict on one complete answer (the reflection check is the Result builder's)."""
    if spec.expect_rejected:
        reading = http_reading(status, spec.refused_with, variant, spec.bypass_headers or ())
        return Judged(reading.outcome, reading.detail, reading.hint)
    outcome, detail = evaluate(spec.expect, status, body, truncated, headers, latency,
                               redactor, channel)
    return Judged(outcome, detail)


@dataclass(frozen=True, slots=True)
class _Checks:
    """An ``expect`` section's checks as plain values: read through pydantic once per
    section object (a config shares equal ones between its probes), not on every run."""

    tls: bool
    status: tuple[tuple[int, int], ...]
    http_version: tuple[str, ...]
    json_: dict[str, Any] | None
    body_regex: str | None
    headers: tuple[tuple[str, str], ...]
    headers_not: tuple[tuple[str, str], ...]
    max_latency: float | None


_CHECKS: SpecMemo[HttpExpect, _Checks] = SpecMemo()


def _checks(expect: HttpExpect) -> _Checks:
    known = _CHECKS.get(expect)
    if known is None:
        known = _CHECKS.put(expect, _Checks(
            expect.tls, tuple(expect.status), tuple(expect.http_version), expect.json_,
            expect.body_regex, tuple(expect.headers.items()),
            tuple(expect.headers_not.items()), expect.max_latency))
    return known


def evaluate(expect_section: HttpExpect, status: int, body: bytes, truncated: bool,
             headers: CIMultiDict[str], latency: float, redactor: Redactor,
             channel: Channel) -> tuple[Outcome, str]:
    """Check the answer in order: TLS, status, HTTP version, JSON, body regex, headers,
    headers_not, latency."""
    expect = _checks(expect_section)
    if expect.tls and not (url := str(channel.url)).lower().startswith("https:"):
        # First: an answer that travelled in clear is the finding, whatever it says.
        how = " after redirects" if channel.redirected else ""
        return Outcome.ASSERTION_FAILED, (
            f"the final answer came over plain HTTP{how} ({target_of(url)}), "
            "not TLS (expect.tls)")
    if not status_matches(status, expect.status):
        return Outcome.UNEXPECTED_STATUS, (
            f"HTTP {status}, expected {show_status(expect.status)}"
            + _location(status, headers, redactor))
    if expect.http_version and channel.version not in expect.http_version:
        return Outcome.ASSERTION_FAILED, (
            f"answered in {channel.version}, expected {' or '.join(expect.http_version)}")
    cut = f" (only the first {len(body)} bytes were read: max_body_bytes)" if truncated else ""
    if expect.json_ is not None:
        if truncated:
            return Outcome.ASSERTION_FAILED, (
                f"body is larger than max_body_bytes ({len(body)}): it was truncated, so "
                "its JSON cannot be checked")
        try:
            data = json.loads(body)
        except ValueError as exc:
            return Outcome.ASSERTION_FAILED, f"body is not JSON: {exc}"
        except RecursionError:
            return Outcome.ASSERTION_FAILED, "body is not usable JSON: nested too deeply"
        reason = check_json_paths(data, expect.json_)
        if reason is not None:
            return Outcome.ASSERTION_FAILED, f"JSON {reason}"
    if expect.body_regex is not None:
        text = body.decode(charset(headers), "replace")
        if re.search(expect.body_regex, text) is None:
            return Outcome.ASSERTION_FAILED, f"body does not match /{expect.body_regex}/{cut}"
    for name, pattern in expect.headers:
        values = headers.getall(name, [])
        if not values:
            return Outcome.ASSERTION_FAILED, f"header {name}: missing"
        if not any(re.search(pattern, v) for v in values):
            shown = redactor.header(name, ", ".join(values))
            return Outcome.ASSERTION_FAILED, (
                f"header {name}: expected to match /{pattern}/, got {shown[:200]!r}")
    for name, pattern in expect.headers_not:
        # Every value: one matching value among several fails (fail_if_header_matches).
        values = headers.getall(name, [])
        hit = next((v for v in values if re.search(pattern, v)), None)
        if hit is not None:
            shown = redactor.header(name, hit)
            return Outcome.ASSERTION_FAILED, (
                f"header {name}: no value may match /{pattern}/, got {shown[:200]!r}"
                + (f" (one of {len(values)} values)" if len(values) > 1 else ""))
    took = f"HTTP {status} in {ms(latency)}"
    if expect.max_latency is not None and latency > expect.max_latency:
        budget = format_duration(expect.max_latency)
        return Outcome.SLOW, f"{took}, over the max_latency of {budget}"
    return Outcome.SUCCESS, took + cut


def show_status(ranges: tuple[tuple[int, int], ...]) -> str:
    """``200``, ``one of 200, 300-399``."""
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return parts[0] if len(parts) == 1 else "one of " + ", ".join(parts)


def _location(status: int, headers: CIMultiDict[str], redactor: Redactor) -> str:
    # A redirect nobody expected is diagnosed by where it points.
    loc = headers.get("Location")
    if 300 <= status < 400 and loc:
        # Kept (redacted before it is cut, so a token in it is replaced whole).
        return f" (Location: {Keeper(redactor).text(loc, 300)})"
    return ""


def charset(headers: CIMultiDict[str]) -> str:
    """The body's charset from its Content-Type (UTF-8 when it names none or an unknown)."""
    match = re.search(r"charset=\"?([\w.:-]+)", headers.get("Content-Type", ""), re.I)
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"


__all__ = ["Channel", "Judged", "charset", "evaluate", "judge", "show_status"]
