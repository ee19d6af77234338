"""The upgrade request, without sockets: where the token goes for each ``send_token_as``."""

from __future__ import annotations

import base64

import pytest

from monitor.config import WebSocketSpec, load_text
from monitor.probes.websocket.adapter import build_request, http_url, token_subprotocol

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig"


def spec_of(body: str) -> WebSocketSpec:
    config = load_text("auth:\n  k: {type: jwt, algorithm: HS256, secret_env: S, claims: {}}\n"
                       "probes:\n  - name: w\n    websocket:\n"
                       "      url: wss://staging.example/api/v1/websocket?v=2\n"
                       "      auth: k\n"
                       "      subprotocols: [jwt-auth]\n"
                       "      headers: {X-Test-Type: synthetic}\n" + body,
                       env={"S": "a-test-secret-that-is-long-enough-0123"})
    spec = config.probes[0].spec.websocket
    assert spec is not None
    return spec


def test_the_token_subprotocol_is_base64url_without_padding() -> None:
    offer = token_subprotocol("a?b>")  # "YT9iPg==" in plain base64: padding and no '+' '/'
    assert offer == "jwt.YT9iPg"
    padded = offer[4:] + "=" * (-len(offer[4:]) % 4)
    assert base64.urlsafe_b64decode(padded) == b"a?b>"
    assert "=" not in token_subprotocol(TOKEN)


@pytest.mark.parametrize(("send_as", "header", "subprotocol", "query"), [
    ("[authorization_header]", True, False, False),
    ("[subprotocol]", False, True, False),
    ("[query]", False, False, True),
    ("[authorization_header, subprotocol]", True, True, False),
    ("[authorization_header, subprotocol, query]", True, True, True),
])
def test_where_the_token_goes(send_as: str, header: bool, subprotocol: bool,
                              query: bool) -> None:
    request = build_request(spec_of(f"      send_token_as: {send_as}\n"), TOKEN)
    assert ("X-Test-Type", "synthetic") in request.headers
    assert (("Authorization", f"Bearer {TOKEN}") in request.headers) is header
    assert request.subprotocols[0] == "jwt-auth"
    assert (token_subprotocol(TOKEN) in request.subprotocols) is subprotocol
    assert request.url.startswith("wss://staging.example/api/v1/websocket?v=2")
    assert (f"&token={TOKEN}" in request.url) is query


def test_no_token_no_credentials() -> None:
    request = build_request(spec_of("      send_token_as: [authorization_header, subprotocol, "
                                     "query]\n"), None)
    assert request.subprotocols == ("jwt-auth",)
    assert request.url == "wss://staging.example/api/v1/websocket?v=2"
    assert all(name != "Authorization" for name, _ in request.headers)


@pytest.mark.parametrize(("ws", "http"), [
    ("ws://h:8080/ws?x=1", "http://h:8080/ws?x=1"),
    ("wss://h/api/v1/websocket", "https://h/api/v1/websocket"),
])
def test_the_diagnostic_get_goes_to_the_same_resource(ws: str, http: str) -> None:
    assert http_url(ws) == http
