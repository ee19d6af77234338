"""The HTTP verdict as a pure function: answers in, outcome and words out (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from monitor.config import HttpSpec
from monitor.outcomes import Outcome
from monitor.probes.http.verdict import Channel, judge
from monitor.redact import Redactor


def spec(**kw: Any) -> HttpSpec:
    return HttpSpec.model_validate({"url": "http://example.test/", **kw})


H = CIMultiDict({"Content-Type": "application/json", "X-Version": "1.2"})
PLAIN = Channel("HTTP/1.1", "http://example.test/")


@pytest.mark.parametrize(("kw", "status", "body", "latency", "outcome", "words"), [
    ({}, 200, b"{}", 0.01, Outcome.SUCCESS, "HTTP 200 in"),
    ({}, 503, b"", 0.01, Outcome.UNEXPECTED_STATUS, "HTTP 503, expected 200-299"),
    ({"expect": {"status": [307]}}, 200, b"", 0.01, Outcome.UNEXPECTED_STATUS, "expected 307"),
    ({"expect": {"json": {"status": "healthy"}}}, 200, b'{"status": "down"}', 0.01,
     Outcome.ASSERTION_FAILED, "JSON"),
    ({"expect": {"json": {"status": "healthy"}}}, 200, b"not json", 0.01,
     Outcome.ASSERTION_FAILED, "body is not JSON"),
    ({"expect": {"body_regex": "ok"}}, 200, b"nope", 0.01, Outcome.ASSERTION_FAILED,
     "does not match"),
    ({"expect": {"headers": {"X-Version": "^2"}}}, 200, b"", 0.01, Outcome.ASSERTION_FAILED,
     "header X-Version"),
    ({"expect": {"headers": {"X-Missing": "."}}}, 200, b"", 0.01, Outcome.ASSERTION_FAILED,
     "missing"),
    ({"expect": {"max_latency": "50ms"}}, 200, b"", 0.2, Outcome.SLOW, "over the max_latency"),
    ({"expect_rejected": True}, 401, b"", 0.01, Outcome.SUCCESS, "refused as expected"),
    ({"expect_rejected": True}, 200, b"", 0.01, Outcome.AUTH_NOT_ENFORCED, "got in"),
    ({"expect_rejected": True}, 404, b"", 0.01, Outcome.UNEXPECTED_STATUS, "not an auth"),
    ({"expect": {"headers_not": {"X-Version": "^1"}}}, 200, b"", 0.01,
     Outcome.ASSERTION_FAILED, "no value may match"),
    ({"expect": {"http_version": "HTTP/1.0"}}, 200, b"", 0.01, Outcome.ASSERTION_FAILED,
     "answered in HTTP/1.1"),
    ({"expect": {"tls": True}, "follow_redirects": True}, 200, b"", 0.01,
     Outcome.ASSERTION_FAILED, "over plain HTTP"),
])
def test_judge(kw: dict[str, Any], status: int, body: bytes, latency: float,
               outcome: Outcome, words: str) -> None:
    judged = judge(spec(**kw), None, status, body, False, H, latency, Redactor(), PLAIN)
    assert judged.outcome is outcome
    assert words in judged.detail


def test_a_truncated_body_cannot_be_checked_as_json() -> None:
    judged = judge(spec(expect={"json": {"a": 1}}), None, 200, b'{"a": 1', True, H, 0.01,
                   Redactor(), PLAIN)
    assert judged.outcome is Outcome.ASSERTION_FAILED and "truncated" in judged.detail
