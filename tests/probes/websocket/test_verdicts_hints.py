"""Every refusal and close of a WebSocket gets its own plain words."""

from __future__ import annotations

import pytest
from websockets.frames import Close

from monitor.config import DEFAULT_REFUSED_WITH
from monitor.outcomes import Outcome
from monitor.probes.websocket.verdicts import (
    Verdict,
    answered_as_get_hint,
    close_hint,
    close_verdict,
    diagnosis_words,
    negative_answer,
    reflection_verdict,
    same_as_get,
    status_hint,
)


@pytest.mark.parametrize(("code", "retry_after", "words"), [
    (400, None, "refused the upgrade request itself"),
    (401, None, "asks for credentials"),
    (403, None, "no WebSocket route at this path"),
    (404, None, "nothing is routed at this path"),
    (405, None, "REST route"),
    (426, None, "Upgrade Required"),
    (429, "30", "rate limited; the server asks to come back later (Retry-After: 30)"),
    (500, None, "failed on the upgrade"),
    (502, None, "a proxy or load balancer in between got no valid answer"),
    (504, None, "gave up waiting for the backend"),
    (503, "5", "not ready (a readiness gate, a deploy, or an overloaded backend) "
               "(Retry-After: 5)"),
    (503, None, "not ready"),
    (418, None, "418: the server refused the upgrade"),
    (599, None, "599: the server or a proxy failed"),
])
def test_status_hint(code: int, retry_after: str | None, words: str) -> None:
    hint = status_hint(code, retry_after)
    assert hint is not None and words in hint


def test_every_status_hint_is_distinct() -> None:
    codes = (400, 401, 403, 404, 405, 426, 429, 500, 502, 503, 504)
    hints = {status_hint(c) for c in codes}
    assert len(hints) == len(codes)
    assert status_hint(200) is None and status_hint(301) is None


@pytest.mark.parametrize(("up", "up_type", "get", "get_type", "same"), [
    (404, "application/json", 404, "application/json", True),
    (200, "application/json; charset=utf-8", 200, "application/json", True),
    (403, "text/plain", 200, "application/json", False),
    (404, "application/json", 404, "text/html", False),
    (404, None, None, None, False),
])
def test_same_as_get(up: int, up_type: str | None, get: int | None, get_type: str | None,
                     same: bool) -> None:
    assert same_as_get(up, up_type, get, get_type) is same


def test_answered_as_get_names_the_proxy() -> None:
    hint = answered_as_get_hint(200, "application/json")
    assert "answered as a plain GET, most likely by a proxy dropping the Upgrade" in hint


@pytest.mark.parametrize(("code", "reason", "before", "outcome", "words"), [
    (1000, "cleanup", True, Outcome.CLOSED_BY_SERVER, "closed cleanly before the welcome"),
    (1000, None, False, Outcome.CLOSED_BY_SERVER, "ended the session cleanly"),
    (1003, "No supported subprotocols", True, Outcome.CLOSED_BY_SERVER,
     "“No supported subprotocols”: refused after accept"),
    (None, None, True, Outcome.CLOSED_BY_SERVER, "1006: the connection dropped"),
    (1006, None, False, Outcome.CLOSED_BY_SERVER, "1006"),
    (1008, "AUTH_FAILED", True, Outcome.AUTH_REJECTED, "usually refused credentials"),
    (1011, "Service not ready", True, Outcome.CLOSED_BY_SERVER,
     "1011 “Service not ready”: the server hit an internal error or is not ready"),
    (1013, None, True, Outcome.CLOSED_BY_SERVER, "try again later"),
    (1001, None, False, Outcome.CLOSED_BY_SERVER, "going away"),
    (4001, "x", False, Outcome.CLOSED_BY_SERVER, "application-defined"),
])
def test_close_hint(code: int | None, reason: str | None, before: bool, outcome: Outcome,
                    words: str) -> None:
    assert words in close_hint(code, reason, before_first_expected=before)
    # The outcome is close_verdict's, with the hint attached.
    rcvd = None if code is None else Close(code, reason or "")
    closed = close_verdict(None, rcvd, True if rcvd else None, "during step 0",
                           before_first_expected=before)
    assert closed.verdict.outcome is outcome
    assert closed.verdict.hint is not None and words in closed.verdict.hint


@pytest.mark.parametrize(("up", "up_type", "get", "get_type", "words"), [
    (200, "application/json", 200, "application/json", "answered as a plain GET"),
    (404, "application/json", 404, "application/json", "answered as a plain GET"),
    (403, "text/plain", 200, "application/json", "served by a plain HTTP route"),
    (None, None, 200, "application/json", "closed the connection without answering the "
                                          "upgrade"),
    (None, None, None, None, "hangs up on this path whatever is asked"),
])
def test_diagnosis_words(up: int | None, up_type: str | None, get: int | None,
                         get_type: str | None, words: str) -> None:
    assert words in diagnosis_words(up, up_type, get, get_type)


@pytest.mark.parametrize(("status", "outcome", "hint"), [
    (401, Outcome.SUCCESS, None),
    (403, Outcome.SUCCESS, None),
    (404, Outcome.HANDSHAKE_REJECTED, "learned nothing about auth"),
    (405, Outcome.HANDSHAKE_REJECTED, "REST route"),
    (503, Outcome.HANDSHAKE_REJECTED, "failed before deciding"),
    (200, Outcome.NOT_UPGRADED, "served as a plain request"),
])
def test_negative_answer(status: int, outcome: Outcome, hint: str | None) -> None:
    base = Outcome.NOT_UPGRADED if status < 400 else Outcome.HANDSHAKE_REJECTED
    got = negative_answer(Verdict(base, "x", status_code=status), DEFAULT_REFUSED_WITH)
    assert got.outcome is outcome
    if hint is None:
        assert got.hint is None
    else:
        assert got.hint is not None and hint in got.hint


def test_reflection_verdict_names_the_header_only() -> None:
    token = "abcdefgh.ijklmnop.qrstuvwx"
    offer = "jwt.YWJjZGVmZ2guaWprbG1ub3AucXJzdHV2d3g"
    got = reflection_verdict([("Sec-WebSocket-Protocol", offer)], token)
    assert got is not None and got.outcome is Outcome.TOKEN_REFLECTED
    assert got.reflected_in == "Sec-WebSocket-Protocol" and token not in got.detail
    assert reflection_verdict([("Sec-WebSocket-Protocol", "jwt-auth")], token) is None
