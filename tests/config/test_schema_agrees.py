"""The JSON Schema (what an editor flags) rejects what `check` rejects, wherever JSON Schema
can say it: the same bad files go to both, and the good ones pass both."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest
import yaml

from monitor.cli.check import cmd_check
from monitor.config import json_schema, load_text
from tests.support.servers import ROOT

ENV = {"STAGING_URL": "http://127.0.0.1:8000", "STAGING_WS_URL": "ws://127.0.0.1:8000",
       "JWT_SECRET_STAGING": "x" * 32, "E2E_PASSWORD": "y" * 16, "CODE": "204", "EVERY": "30s"}
VALIDATOR = jsonschema.Draft202012Validator(json_schema())
HTTP = "{url: 'http://127.0.0.1:1/'}"
WS = "{url: 'ws://127.0.0.1:1/'}"


def probe(body: str) -> str:
    return "probes:\n  - name: p\n" + textwrap.indent(textwrap.dedent(body), "    ")


def ws_step(step: str) -> str:
    return probe(f"websocket:\n  url: ws://127.0.0.1:1/\n  steps:\n    - {step}\n")


BAD: dict[str, str] = {
    # URL schemes per probe type
    "http URL on a websocket probe": probe("websocket: {url: 'http://127.0.0.1:1/ws'}\n"),
    "ws URL on an http probe": probe("http: {url: 'ws://127.0.0.1:1/'}\n"),
    "no scheme": probe("http: {url: '127.0.0.1:1/'}\n"),
    "ftp": probe("http: {url: 'ftp://h/'}\n"),
    "ftp token endpoint": "auth:\n  k: {type: token_endpoint, url: 'ftp://h/t'}\n"
                          + probe(f"http: {HTTP}\n"),
    "uppercase ws URL on an http probe": probe("http: {url: 'WS://h/'}\n"),
    # status patterns
    "status abc": probe("http: {url: 'http://h/', expect: {status: [abc]}}\n"),
    "status abc alone": probe("http: {url: 'http://h/', expect: {status: abc}}\n"),
    "status 600": probe("http: {url: 'http://h/', expect: {status: [600]}}\n"),
    "status 6xx": probe("http: {url: 'http://h/', expect: {status: 6xx}}\n"),
    "status 99": probe("http: {url: 'http://h/', expect: {status: 99}}\n"),
    "status empty list": probe("http: {url: 'http://h/', expect: {status: []}}\n"),
    # exactly one probe kind
    "both kinds": probe(f"http: {HTTP}\nwebsocket: {WS}\n"),
    "no kind": probe("interval: 5s\n"),
    # durations
    "duration with words": probe(f"interval: 5 minutes\nhttp: {HTTP}\n"),
    "duration zero": probe(f"interval: 0s\nhttp: {HTTP}\n"),
    "duration negative": probe(f"interval: -1s\nhttp: {HTTP}\n"),
    "duration number zero": probe(f"timeout: 0\nhttp: {HTTP}\n"),
    "duration without unit": probe(f"timeout: '5'\nhttp: {HTTP}\n"),
    "duration over a year": "defaults: {interval: 40000000}\n" + probe(f"http: {HTTP}\n"),
    # step kinds
    "step with two kinds": ws_step("{send: {text: hi}, expect: {regex: x}}"),
    "step with no kind": ws_step("{name: nothing}"),
    "send with json and text": ws_step("{send: {text: hi, json: {a: 1}}}"),
    "send with nothing": ws_step("{send: {}}"),
    "expect without matcher": ws_step("{expect: {timeout: 1s}}"),
    "expect_events without types": ws_step("{expect_events: {types: []}}"),
    # auth providers
    "jwt with two key sources": "auth:\n  k: {type: jwt, secret_env: A, secret_file: /f}\n"
                                + probe(f"http: {HTTP}\n"),
    "jwt without a key": "auth:\n  k: {type: jwt}\n" + probe(f"http: {HTTP}\n"),
    "RS256 with secret_env": "auth:\n  k: {type: jwt, algorithm: RS256, secret_env: A}\n"
                             + probe(f"http: {HTTP}\n"),
    "HS256 with a private key": "auth:\n  k: {type: jwt, private_key_file: /k.pem}\n"
                                + probe(f"http: {HTTP}\n"),
    "unknown auth type": "auth:\n  k: {type: basic}\n" + probe(f"http: {HTTP}\n"),
    "inline secret in a shared provider": "auth:\n  k: {type: jwt, secret: s}\n"
                                          + probe(f"http: {HTTP}\n"),
    "inline secret on a positive probe": probe(
        "websocket: {url: 'ws://h/', auth: {type: jwt, secret: s}}\n"),
    "inline secret on an http probe": probe(
        "http: {url: 'http://h/', auth: {type: jwt, secret: s}}\n"),
    "token subprotocol without auth": probe(
        "websocket: {url: 'ws://h/', send_token_as: [subprotocol]}\n"),
    "credentials in URL and auth": "auth:\n  k: {type: jwt, secret_env: JWT_SECRET_STAGING}\n"
                                   + probe("http: {url: 'http://u:p@h/', auth: k}\n"),
    # other keys
    "body and json_body": probe("http: {url: 'http://h/', body: x, json_body: {a: 1}}\n"),
    "unknown key": probe("http: {url: 'http://h/', expcet: {}}\n"),
    "bad name": "probes:\n  - name: a b\n    http: {url: 'http://h/'}\n",
    "reserved label": probe(f"labels: {{probe: x}}\nhttp: {HTTP}\n"),
    "bad label name": "defaults: {labels: {a-b: x}}\n" + probe(f"http: {HTTP}\n"),
    "header with a line break": probe("http: {url: 'http://h/', headers: {X-A: \"a\\nX-B: b\"}}\n"),
    "method": probe("http: {url: 'http://h/', method: FETCH}\n"),
    "max_body_bytes 0": probe("http: {url: 'http://h/', max_body_bytes: 0}\n"),
    # redirects and the answer's channel (issue 25)
    "max_redirects without follow_redirects": probe(
        "http: {url: 'http://h/', max_redirects: 3}\n"),
    "max_redirects with follow_redirects false": probe(
        "http: {url: 'http://h/', follow_redirects: false, max_redirects: 3}\n"),
    "max_redirects 0": probe("http: {url: 'http://h/', follow_redirects: true, "
                             "max_redirects: 0}\n"),
    "max_redirects over 20": probe("http: {url: 'http://h/', follow_redirects: true, "
                                   "max_redirects: 21}\n"),
    "expect.tls on http without redirects": probe(
        "http: {url: 'HTTP://h/', expect: {tls: true}}\n"),
    "http_version 2": probe("http: {url: 'http://h/', expect: {http_version: [HTTP/2.0]}}\n"),
    "http_version 3 alone": probe("http: {url: 'http://h/', expect: {http_version: HTTP/3}}\n"),
    "token placement": probe("websocket: {url: 'ws://h/', send_token_as: [cookie]}\n"),
    "probes not a list": "probes: {name: a}\n",
    "no probes": "defaults: {interval: 30s}\n",
    "empty probes": "probes: []\n",
}

# What JSON Schema cannot say, left to `check` alone (the test below keeps this list honest).
CHECK_ONLY = {
    "duplicate names": "probes:\n  - {name: a, http: " + HTTP + "}\n"
                       "  - {name: a, http: " + HTTP + "}\n",
    "unknown auth provider": probe("http: {url: 'http://h/', auth: nope}\n"),
    "timeout not under interval": probe(f"interval: 5s\ntimeout: 10s\nhttp: {HTTP}\n"),
    "range upside down": probe("http: {url: 'http://h/', expect: {status: '299-200'}}\n"),
    "bad regex": probe("http: {url: 'http://h/', expect: {body_regex: '('}}\n"),
    "bad headers_not regex": probe("http: {url: 'http://h/', expect: {headers_not: {A: '['}}}\n"),
    "port out of range": probe("websocket: {url: 'ws://h:99999/'}\n"),
}

GOOD: dict[str, str] = {
    "status forms": probe("http:\n  url: http://h/\n  expect: {status: [200, '2xx', '2XX', "
                          "'200-299', ' 300 - 399 ', '404', '${CODE}']}\n"),
    "status alone": probe("http: {url: 'http://h/', expect: {status: 204}}\n"),
    "var URL": probe("websocket: {url: '${STAGING_WS_URL:-ws://127.0.0.1:1}/ws'}\n"),
    "var duration": probe("interval: ${EVERY}\nhttp: {url: '${STAGING_URL}/x'}\n"),
    "durations": probe("interval: 1m30s\ntimeout: 500ms\nhttp: {url: 'https://h/'}\n"),
    "RS256 key": "auth:\n  k: {type: jwt, algorithm: RS256, private_key_file: "
                 + str(ROOT / "README.md") + "}\n" + probe("http: {url: 'http://h/', auth: k}\n"),
    "negative probe": probe("websocket:\n  url: wss://h/\n  auth: {type: jwt, secret: wrong}\n"
                            "  expect_rejected: true\n"),
    # RFC 3986: a scheme is case-insensitive, in every URL field
    "uppercase schemes": "auth:\n  k: {type: token_endpoint, url: 'HTTPS://h/t'}\n"
                         + probe("http: {url: 'HTTP://h/', auth: k}\n")
                         + "  - name: q\n    http: {url: 'HtTpS://h/'}\n"
                         + "  - name: w\n    websocket: {url: 'WS://h/'}\n"
                         + "  - name: v\n    websocket: {url: 'wSs://h/'}\n",
    "redirects and channel": probe(
        "http:\n  url: http://h/\n  follow_redirects: true\n  max_redirects: 20\n"
        "  expect: {tls: true, http_version: [HTTP/1.1, HTTP/1.0], "
        "headers_not: {Server: 'nginx/0\\.', X-Debug: ''}}\n"),
    "http_version alone": probe("http: {url: 'https://h/', expect: {http_version: HTTP/1.1, "
                                "tls: true}}\n"),
    "steps": ws_step("{send: {json: {a: 1}}}") + "        - {expect: {regex: x}}\n"
                                                 "        - {expect_events: {types: [a]}}\n",
}


def schema_errors(data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
            for e in VALIDATOR.iter_errors(data)]


def check_rejects(text: str) -> bool:
    """What `synthmon check` decides (with the secrets of ENV set)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probes.yaml"
        path.write_text(text)
        with mock.patch.dict(os.environ, ENV), \
                contextlib.redirect_stderr(io.StringIO()), \
                contextlib.redirect_stdout(io.StringIO()):
            return cmd_check(str(path)) != 0


def substituted(text: str) -> Any:
    import re

    def repl(m: re.Match[str]) -> str:
        return ENV.get(m.group(1)) or m.group(2) or ""
    return yaml.safe_load(re.sub(r"\$\{([A-Za-z_]\w*)(?::-([^}]*))?\}", repl, text)) or {}


@pytest.mark.parametrize("text", list(BAD.values()), ids=list(BAD))
def test_both_reject(text: str) -> None:
    assert check_rejects(text), "check accepts it"
    assert schema_errors(substituted(text)), "the JSON Schema accepts it"
    if "${" not in text:  # as an editor sees the file
        assert schema_errors(yaml.safe_load(text) or {})


@pytest.mark.parametrize("text", list(CHECK_ONLY.values()), ids=list(CHECK_ONLY))
def test_what_only_check_can_reject(text: str) -> None:
    assert check_rejects(text)
    assert schema_errors(substituted(text)) == []


@pytest.mark.parametrize("text", list(GOOD.values()), ids=list(GOOD))
def test_both_accept(text: str) -> None:
    assert not check_rejects(text)
    assert schema_errors(substituted(text)) == []
    assert schema_errors(yaml.safe_load(text)) == []  # with its ${VAR}s, as an editor sees it


@pytest.mark.parametrize("path", [ROOT / "probes.yaml", ROOT / "monitor" / "probes.yaml"],
                         ids=["probes.yaml", "shipped"])
def test_shipped_files_pass_both(path: Path) -> None:
    text = path.read_text()
    load_text(text, env=ENV, require_secrets=True)
    assert schema_errors(substituted(text)) == []
    assert schema_errors(yaml.safe_load(text)) == []
