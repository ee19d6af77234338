# ruff: noqa: E501 - a table of messages reads best one row a line
"""pydantic's wording never reaches the user: every error type a probes.yaml can trigger,
each with the message `check` prints for it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from monitor.config import ConfigError, ProbesFile, load_text

# (file, the problems `check` prints without the "probes.yaml:1: " prefix)
TABLE: list[tuple[str, list[str]]] = [
    ('probes: {name: a}\n',
     ['probes: must be a list of probes (- name: ...), not a mapping']),
    ('probes:\n',
     ['probes: must be a list of probes (- name: ...); it is empty']),
    ('probes: hello\n',
     ['probes: must be a list of probes (- name: ...), not a string']),
    ('probes: [hello]\n',
     ['probes[0]: must be a probe: a mapping with name and http or websocket, not a string']),
    ("probes: [{name: 5, http: {url: 'http://h/'}}]\n",
     ['probes[0].name: must be a string, not a number']),
    ("probes: [{name: 'a b', http: {url: 'http://h/'}}]\n",
     ['probes[0].name: must be 1 to 100 characters: letters, digits, _ . : -']),
    ("probes: [{name: a, http: {url: 'http://h/', auth: 5}}]\n",
     ['probes[0].http.auth: must be the name of an auth provider, or an auth provider: a mapping with type: jwt or token_endpoint, not a number']),
    ("probes: [{name: a, http: {url: 'http://h/', auth: [x]}}]\n",
     ['probes[0].http.auth: must be the name of an auth provider, or an auth provider: a mapping with type: jwt or token_endpoint, not a list']),
    ("probes: [{name: a, http: {url: 'http://h/', auth: {secret_env: X}}}]\n",
     ['probes[0].http.auth: needs a type (jwt or token_endpoint)']),
    ('auth: {x: {type: oauth}}\n',
     ['auth.x: type must be one of: jwt, token_endpoint']),
    ('auth: [a]\n',
     ['auth: must be a mapping of auth providers by name (NAME: {type: jwt, ...}), not a list']),
    ('auth: {x: hello}\n',
     ['auth.x: must be an auth provider: a mapping with type: jwt or token_endpoint, not a string']),
    ('defaults: 5\n',
     ['defaults: must be a mapping (key: value), not a number']),
    ('defaults: {labels: [a]}\n',
     ['defaults.labels: must be a mapping (key: value), not a list']),
    ('defaults: {labels: {a: {b: c}}}\n',
     ['defaults.labels.a: must be a string, not a mapping']),
    ("probes: [{name: a, http: {url: 'http://h/', max_body_bytes: 0}}]\n",
     ['probes[0].http.max_body_bytes: must be greater than 0']),
    ("probes: [{name: a, http: {url: 'http://h/', max_body_bytes: lots}}]\n",
     ['probes[0].http.max_body_bytes: must be a whole number, not a string']),
    ("probes: [{name: a, http: {url: 'http://h/', max_body_bytes: 1.5}}]\n",
     ['probes[0].http.max_body_bytes: must be a whole number']),
    ("probes: [{name: a, http: {url: 'http://h/', follow_redirects: maybe}}]\n",
     ['probes[0].http.follow_redirects: must be true or false']),
    ("probes: [{name: a, http: {url: 'http://h/', method: FETCH}}]\n",
     ["probes[0].http.method: must be 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE' or 'OPTIONS'"]),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: [{expect_events: {types: []}}]}}]\n",
     ['probes[0].websocket.steps[0].expect_events.types: must list at least 1 item(s)']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: {a: b}}}]\n",
     ['probes[0].websocket.steps: must be a list of steps (- expect: ... / - send: ... / - expect_events: ...), not a mapping']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: [send]}}]\n",
     ['probes[0].websocket.steps[0]: must be a step: a mapping with one of expect, send, expect_events, not a string']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', send_token_as: [cookie]}}]\n",
     ["probes[0].websocket.send_token_as[0]: must be 'authorization_header', 'subprotocol' or 'query'"]),
    ("probes: [{name: a, websocket: {url: 'ws://h/', send_token_as: query}}]\n",
     ['probes[0].websocket.send_token_as: must be a list, like [a, b], not a string']),
    ('probes: [{name: a, http: {url: 5}}]\n',
     ['probes[0].http.url: must be a string, not a number']),
    ("probes: [{name: a, http: {url: 'http://h/', headers: {X-A: 5}}}]\n",
     ['probes[0].http.headers.X-A: must be a string, not a number']),
    ("probes: [{name: a, http: {url: 'http://h/', headers: [a]}}]\n",
     ['probes[0].http.headers: must be a mapping (key: value), not a list']),
    ("probes: [{name: a, http: {url: 'http://h/', expect: {json: [a]}}}]\n",
     ['probes[0].http.expect.json: must be a mapping (key: value), not a list']),
    ("probes: [{name: a, http: {url: 'http://h/', tls: true}}]\n",
     ['probes[0].http.tls: must be a mapping (key: value), not a boolean']),
    ("probes: [{name: a, http: {url: 'http://h/', tls: {insecure_skip_verify: maybe}}}]\n",
     ['probes[0].http.tls.insecure_skip_verify: must be true or false']),
    ('auth: {x: {type: jwt, algorithm: none, secret_env: X}}\n',
     ["auth.x.algorithm: must be 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256' or 'ES384'"]),
    ('auth: {x: {type: jwt, secret_env: X, claims: [a]}}\n',
     ['auth.x.claims: must be a mapping (key: value), not a list']),
    ("auth: {x: {type: token_endpoint, url: 'http://h/', fields: {a: 5}}}\n",
     ['auth.x.fields.a: must be a string, not a number']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', subprotocols: jwt}}]\n",
     ['probes[0].websocket.subprotocols: must be a list, like [a, b], not a string']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: [{expect_events: {types: [a], in_order: sometimes}}]}}]\n",
     ['probes[0].websocket.steps[0].expect_events.in_order: must be true or false']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: [{expect: hello}]}}]\n",
     ['probes[0].websocket.steps[0].expect: must be a mapping (key: value), not a string']),
    ("probes: [{name: a, websocket: {url: 'ws://h/', steps: [{name: [1], send: {text: a}}]}}]\n",
     ['probes[0].websocket.steps[0].name: must be a string, not a list']),
    ('probes: [{name: a, http: [a]}]\n',
     ['probes[0].http: must be a mapping (key: value), not a list']),
    ("probes: [{name: a, http: {url: 'http://h/', body: 5}}]\n",
     ['probes[0].http.body: must be a string, not a number']),
    ("probes: [{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, http: {url: 'http://h/'}}]\n",
     ['probes[0].name: must be 1 to 100 characters: letters, digits, _ . : -']),
    ('auth: {x: {type: jwt, secret_env: X, ttl: [1]}}\n',
     ['auth.x.ttl: must be a duration like 5s']),
]

# The pydantic error types the table above triggers: every type a user can reach through
# the schema (each mapped in monitor/config/errors.py).
REACHABLE = {"missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found",
             "literal_error", "tuple_type", "dict_type", "model_type", "model_attributes_type",
             "string_type", "int_parsing", "int_from_float", "bool_parsing", "greater_than",
             "too_short", "string_pattern_mismatch", "value_error"}
PYDANTIC_WORDS = ("Input should", "valid dictionary", "valid tuple", "instance of",
                  "String should", "Tuple should", "List should", "Value error", "unable to",
                  "Field required", "Extra inputs", "function-after", "tagged-union")


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[t for t, _ in TABLE])
def test_each_error_in_our_words(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(text, env={"X": "x"})
    assert [p.removeprefix("probes.yaml:1: ") for p in info.value.problems] == expected
    for problem in info.value.problems:
        assert not any(w in problem for w in PYDANTIC_WORDS), problem


def _types(text: str) -> set[str]:
    import yaml

    try:
        ProbesFile.model_validate(yaml.safe_load(text) or {})
    except ValidationError as exc:
        return {str(e["type"]) for e in exc.errors()}
    return set()


def test_the_table_reaches_every_error_type() -> None:
    extra = ["probes: [{name: a, http: {url: 'http://h/'}, bogus: 1}]\n",
             "probes: [{http: {url: 'http://h/'}}]\n"]
    seen: set[str] = set()
    for text in [t for t, _ in TABLE] + extra:
        seen |= _types(text)
    assert seen == REACHABLE, seen ^ REACHABLE


def test_unmapped_types_still_get_our_words() -> None:
    from monitor.config.errors import _message

    err: dict[str, Any] = {"type": "some_future_type", "msg": "Input should be shiny",
                           "input": 1, "loc": ("x",)}
    assert _message(err, ProbesFile, ("x",)) == "is not valid"
