"""A credential echoed in a response header is found in every form; only the name is kept."""

from __future__ import annotations

import base64

import pytest

from monitor.probes.reflection import reflected_detail, reflected_in

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXZhbHVl"
B64 = base64.b64encode(TOKEN.encode()).decode()
B64URL = base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("headers", "found"), [
    ([("Server", "x"), ("X-Debug-Auth", f"Bearer {TOKEN}")], "X-Debug-Auth"),
    ([("Sec-WebSocket-Protocol", f"jwt.{B64URL}")], "Sec-WebSocket-Protocol"),
    ([("X-Token", B64)], "X-Token"),
    ([("X-Token", B64.rstrip("="))], "X-Token"),
    ([("Location", f"/next?token={TOKEN}")], "Location"),
    ([("Sec-WebSocket-Protocol", "jwt-auth"), ("Server", "uvicorn")], None),
    ([("X-Partial", TOKEN[:20])], None),
])
def test_reflected_in(headers: list[tuple[str, str]], found: str | None) -> None:
    assert reflected_in(headers, TOKEN) == found


def test_no_token_or_a_short_one_is_never_found() -> None:
    assert reflected_in([("A", "abc")], None) is None
    assert reflected_in([("A", "abc")], "abc") is None


def test_the_detail_never_carries_the_value() -> None:
    assert "jwt.<token>" in reflected_detail("Sec-WebSocket-Protocol")
    assert "X-Debug-Auth header" in reflected_detail("X-Debug-Auth")


def test_a_token_found_only_across_two_values_is_not_reflected() -> None:
    """The values are searched joined first; a match that spans two of them (a token with a
    line break in it) is not a header carrying it."""
    token = "first-half\nsecond-half"
    assert reflected_in([("A", "x first-half"), ("B", "second-half y")], token) is None
    assert reflected_in([("A", "x"), ("B", f"y {token}")], token) == "B"


def test_headers_read_once_from_any_iterable() -> None:
    assert reflected_in(iter([("Server", "x"), ("X-Echo", TOKEN)]), TOKEN) == "X-Echo"
    assert reflected_in(iter([]), TOKEN) is None
