"""Only an auth refusal counts for a negative probe; everything else says what it is."""

from __future__ import annotations

import pytest

from monitor.config import DEFAULT_REFUSED_WITH
from monitor.outcomes import Outcome
from monitor.probes.refusal import (
    close_reading,
    handshake_reading,
    http_reading,
    nothing_learned,
    sent_words,
)

NOTHING = "the probe learned nothing about auth"


@pytest.mark.parametrize(("status", "outcome", "detail", "hint"), [
    (401, Outcome.SUCCESS, "refused as expected: HTTP 401", None),
    (403, Outcome.SUCCESS, "refused as expected: HTTP 403", None),
    (200, Outcome.AUTH_NOT_ENFORCED, "variant expired (an expired token (exp an hour ago)) "
                                     "got in: HTTP 200", None),
    (204, Outcome.AUTH_NOT_ENFORCED, "got in: HTTP 204", None),
    (404, Outcome.UNEXPECTED_STATUS, "HTTP 404 is not an auth refusal (refused_with: "
                                     "401, 403, 1008)", "404: nothing is routed"),
    (405, Outcome.UNEXPECTED_STATUS, "HTTP 405 is not an auth refusal", "a REST route"),
    (500, Outcome.UNEXPECTED_STATUS, "HTTP 500", "failed before deciding"),
    (503, Outcome.UNEXPECTED_STATUS, "HTTP 503", "failed before deciding"),
    (302, Outcome.UNEXPECTED_STATUS, "HTTP 302", "a redirect"),
    (400, Outcome.UNEXPECTED_STATUS, "HTTP 400", "not one of the refusals"),
])
def test_http_reading(status: int, outcome: Outcome, detail: str, hint: str | None) -> None:
    reading = http_reading(status, DEFAULT_REFUSED_WITH, "expired")
    assert reading.outcome is outcome
    assert detail in reading.detail
    if hint is None:
        assert reading.hint is None
    else:
        assert reading.hint is not None and hint in reading.hint and NOTHING in reading.hint


def test_refused_with_overrides_the_default() -> None:
    assert http_reading(404, (404,), None).outcome is Outcome.SUCCESS
    assert http_reading(401, (403,), None).outcome is Outcome.UNEXPECTED_STATUS


@pytest.mark.parametrize(("status", "success"), [
    (401, True), (403, True), (404, False), (405, False), (500, False), (503, False),
    (200, False),
])
def test_handshake_reading(status: int, success: bool) -> None:
    reading = handshake_reading(status, DEFAULT_REFUSED_WITH)
    assert (reading is not None and reading.outcome is Outcome.SUCCESS) == success


@pytest.mark.parametrize(("code", "auth_message", "refused", "success"), [
    (1008, False, DEFAULT_REFUSED_WITH, True),
    (None, True, DEFAULT_REFUSED_WITH, True),  # an auth error message, no close frame yet
    (1011, True, DEFAULT_REFUSED_WITH, True),  # the auth message decides
    (1011, False, DEFAULT_REFUSED_WITH, False),
    (1000, False, DEFAULT_REFUSED_WITH, False),
    (4001, False, (*DEFAULT_REFUSED_WITH, 4001), True),
    (None, True, (401, 403), False),  # 1008 not counted: an auth message is not either
])
def test_close_reading(code: int | None, auth_message: bool, refused: tuple[int, ...],
                       success: bool) -> None:
    reading = close_reading(code, "why", refused, auth_message)
    assert (reading is not None) == success


@pytest.mark.parametrize(("code", "upgrade", "words"), [
    (404, True, "nothing is routed"),
    (405, True, "REST route"),
    (502, True, "failed before deciding"),
    (200, True, "served as a plain request"),
    (301, True, "served as a plain request"),
    (301, False, "a redirect"),
])
def test_nothing_learned(code: int, upgrade: bool, words: str) -> None:
    text = nothing_learned(code, upgrade=upgrade)
    assert words in text and text.endswith(NOTHING)


def test_sent_words_names_the_variant_and_bypass_headers() -> None:
    assert sent_words(None) == "the probe's credentials"
    assert "bypass headers (X-E2E-Test)" in sent_words("bypass_headers", ["X-E2E-Test"])
    assert sent_words("no_token").startswith("variant no_token (")
