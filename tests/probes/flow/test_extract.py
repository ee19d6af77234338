"""Values taken from answers (issue 23), table-tested without sockets: every source (JSON
path, header, regex on the body or on a header), every way it can be missing, secrets by
name, and a step fed several answers (a WebSocket step: the handshake, then messages)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from monitor.config.schema.extract import Extract, looks_secret, secret_value
from monitor.probes.answer import Answer
from monitor.probes.flow.extract import MAX_VALUE, Extraction, Value, extract_one

LOGIN = Answer(headers=(("Content-Type", "application/json"), ("X-Access-Token", "tok-h"),
                        ("Set-Cookie", "sid=abc123; Path=/; HttpOnly")),
               body=b'{"access_token": "eyJ.x.y", "user": {"id": 42, "tags": ["a", "b"],'
                    b' "admin": false, "none": null}, "empty": ""}')


def ex(**spec: Any) -> Extract:
    return Extract.model_validate(spec)


@pytest.mark.parametrize(("spec", "answer", "expected"), [
    ({"json": "access_token"}, LOGIN, ("eyJ.x.y", "eyJ.x.y")),
    ({"json": "user.id"}, LOGIN, ("42", 42)),
    ({"json": "user.admin"}, LOGIN, ("false", False)),
    ({"json": "user.tags"}, LOGIN, ('["a","b"]', ["a", "b"])),
    ({"json": "user.tags.1"}, LOGIN, ("b", "b")),
    ({"header": "x-access-token"}, LOGIN, ("tok-h", "tok-h")),  # any case
    ({"header": "Set-Cookie", "regex": "sid=([^;]+)"}, LOGIN, ("abc123", "abc123")),
    ({"regex": r'"access_token": "([^"]+)"'}, LOGIN, ("eyJ.x.y", "eyJ.x.y")),
    ({"regex": "id=(\\w+)"}, Answer(body="thread id=t_1 made"), ("t_1", "t_1")),
    ({"json": "data.id"}, Answer(body=bytearray(b'{"data": {"id": "x"}}')), ("x", "x")),
])
def test_a_value_from_each_source(spec: dict[str, Any], answer: Answer,
                                  expected: tuple[str, Any]) -> None:
    got = extract_one("v", ex(**spec), answer)
    assert isinstance(got, Value)
    assert (got.text, got.raw) == expected


@pytest.mark.parametrize(("spec", "answer", "why"), [
    ({"json": "refresh_token"}, LOGIN, "the JSON has no refresh_token"),
    ({"json": "user.none"}, LOGIN, "user.none is null"),
    ({"json": "empty"}, LOGIN, "the value is empty"),
    ({"json": "user.tags.5"}, LOGIN, "the JSON has no user.tags.5"),
    ({"json": "id"}, Answer(body=b"<html>oops</html>"), "the body is not JSON"),
    ({"json": "id"}, Answer(headers=(("A", "b"),)), "the answer has no body"),
    ({"json": "id"}, Answer(body=b""), "the answer has no body"),
    ({"header": "X-Token"}, LOGIN, "the answer has no X-Token header"),
    ({"header": "Set-Cookie", "regex": "token=(\\w+)"}, LOGIN,
     "regex 'token=(\\\\w+)' does not match the Set-Cookie header"),
    ({"regex": "id=(\\d+)"}, LOGIN, "regex 'id=(\\\\d+)' does not match the body"),
    ({"regex": "a(b)?c"}, Answer(body="ac"), "regex 'a(b)?c' does not match the body"),
    ({"json": "big"}, Answer(body='{"big": "%s"}' % ("x" * (MAX_VALUE + 1))),
     "the value is longer than 16 KiB"),
])
def test_why_a_value_is_not_there(spec: dict[str, Any], answer: Answer, why: str) -> None:
    assert extract_one("v", ex(**spec), answer) == why


@pytest.mark.parametrize(("spec", "message"), [
    ({}, "needs json: PATH, header: NAME or regex: RE (one group)"),
    ({"secret": True}, "needs json: PATH, header: NAME or regex: RE (one group)"),
    ({"json": "a", "header": "B"}, "json cannot be combined with header or regex"),
    ({"json": "a", "regex": "(b)"}, "json cannot be combined with header or regex"),
    ({"regex": "no group"}, "must have exactly one group (the value), it has 0"),
    ({"regex": "(a)(b)"}, "must have exactly one group (the value), it has 2"),
    ({"regex": "(a"}, "is not a valid regular expression"),
    ({"header": "Bad Header"}, "must be a header name"),
    ({"json": ""}, "at least 1 character"),
    ({"json": "a", "jsn": "b"}, "Extra inputs are not permitted"),
])
def test_an_extract_spec_that_cannot_work_is_refused(spec: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        Extract.model_validate(spec)


@pytest.mark.parametrize(("name", "spec", "secret"), [
    ("token", {"json": "access_token"}, True),      # a login's token: secret by default
    ("t", {"json": "access_token"}, True),          # its path says so
    ("jwt", {"json": "data.jwt"}, True),
    ("sid", {"header": "Set-Cookie", "regex": "sid=([^;]+)"}, True),
    ("session_id", {"json": "session"}, True),
    ("auth", {"header": "Authorization"}, True),
    ("password_echo", {"json": "user.password"}, True),
    ("thread_id", {"json": "id"}, False),
    ("location", {"header": "Location"}, False),
    ("token", {"json": "access_token", "secret": False}, False),  # unless said otherwise
    ("thread_id", {"json": "id", "secret": True}, True),
])
def test_which_values_are_secret(name: str, spec: dict[str, Any], secret: bool) -> None:
    assert secret_value(name, ex(**spec)) is secret
    got = extract_one(name, ex(**spec), Answer(
        headers=(("Set-Cookie", "sid=1; x"), ("Authorization", "Bearer z"),
                 ("Location", "/x")),
        body='{"access_token": "a", "data": {"jwt": "j"}, "session": "s", "id": "i",'
             ' "user": {"password": "p"}}'))
    assert isinstance(got, Value) and got.secret is secret
    if "secret" not in spec:  # the default, from the name, the path or the header
        assert looks_secret(name, ex(**spec)) is secret


def test_a_step_with_several_answers_takes_each_value_from_the_first_that_has_it() -> None:
    step = Extraction({"conn": ex(json="data.connection_id"), "run": ex(json="data.run_id"),
                       "server": ex(header="Server"), "never": ex(json="nope"),
                       "hdr": ex(header="X-None")})
    handshake = Answer(headers=(("Server", "staging/1.0"), ("Upgrade", "websocket")))
    assert {k: v.text for k, v in step.feed(handshake).items()} == {"server": "staging/1.0"}
    assert {k: v.text for k, v in step.feed(
        Answer(body='{"data": {"connection_id": "c1"}}')).items()} == {"conn": "c1"}
    assert {k: v.text for k, v in step.feed(Answer(
        body='{"data": {"connection_id": "c2", "run_id": "r1"}}')).items()} == {"run": "r1"}
    assert {k: v.text for k, v in step.values.items()} == {
        "server": "staging/1.0", "conn": "c1", "run": "r1"}
    # Why each is missing, from an answer that could have had it.
    assert step.missing() == [("never", "the JSON has no nope"),
                              ("hdr", "the answer has no X-None header")]
    assert Extraction({"a": ex(json="a")}).missing() == [("a", "the step got no answer")]
