"""`check` reports every independent problem of every probe in one run (issue 20, group 6).

A probe whose schema fails (an http:// URL on a websocket probe, a URL emptied by an unset
variable, a bad method) used to skip the whole-file checks: its unknown auth provider, its
missing secret, its reserved label appeared only once the first error was fixed. Here every
schema error is paired with every whole-file problem it does not share a key with, and both
must be said in the same run, each at its own file:line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import SHIPPED_CONFIG, ConfigError, load_text

HEAD = """\
auth:
  good: {type: jwt, secret_env: GOOD_SECRET}
  present: {type: jwt, secret_env: PRESENT_SECRET}
  good_claims: {type: jwt, secret_env: PRESENT_SECRET, claims: {iss: me}}
  endpoint: {type: token_endpoint, url: "http://127.0.0.1:1/t",
             secret_fields_env: {password: EP_PASSWORD}}
  endpoint_ok: {type: token_endpoint, url: "http://127.0.0.1:1/t",
                secret_fields_env: {password: PRESENT_SECRET}}
probes:
"""
ENV = {"PRESENT_SECRET": "s3cret"}


@dataclass(frozen=True)
class Piece:
    """Lines of one probe (probe level, or under its kind) and the problem they cause: the
    key it is reported at and the line it names (the first line holding ``marker``)."""

    name: str
    kinds: tuple[str, ...]
    probe: tuple[str, ...]  # lines at the probe's level
    body: tuple[str, ...]  # lines under http: / websocket:
    key: str  # e.g. "{kind}.url", formatted with the kind
    message: str  # a part of the message
    marker: str

    def keys(self) -> set[str]:
        return {line.split(":")[0].strip() for line in self.probe + self.body}


SCHEMA = [
    Piece("ws url with http://", ("websocket",), (), ("url: http://127.0.0.1:1/ws",),
          "websocket.url", "must be a ws:// or wss:// URL", "url: http://127.0.0.1:1/ws"),
    Piece("url emptied by an unset variable", ("http", "websocket"), (),
          ("url: ${UNSET_URL}/x",), "{kind}.url", "environment variable UNSET_URL is not set",
          "UNSET_URL"),
    Piece("bad method", ("http",), (), ("method: FETCH",), "http.method", "must be 'GET'",
          "FETCH"),
    Piece("bad step timeout", ("websocket",), (), ("steps: [{expect: {timeout: soon}}]",),
          "websocket.steps[0].expect.timeout", "must be a duration", "timeout: soon"),
    Piece("unknown probe key", ("http", "websocket"), ("retry: 3",), (), "retry",
          "unknown key", "retry: 3"),
    Piece("unknown kind key", ("http", "websocket"), (), ("hedaers: {}",), "{kind}.hedaers",
          "unknown key", "hedaers"),
    Piece("bad probe timeout", ("http", "websocket"), ("timeout: soon",), (), "timeout",
          "must be a duration", "timeout: soon"),
]

SEMANTIC = [
    Piece("unknown auth provider", ("http", "websocket"), (), ("auth: nosuch",),
          "{kind}.auth", "unknown auth provider 'nosuch'", "auth: nosuch"),
    Piece("shared provider's secret missing", ("http", "websocket"), (), ("auth: good",),
          "auth.good.secret_env", "GOOD_SECRET is not set", "good: {"),
    Piece("token endpoint's secret missing", ("http", "websocket"), (), ("auth: endpoint",),
          "auth.endpoint.secret_fields_env.password", "EP_PASSWORD is not set",
          "password: EP_PASSWORD"),
    Piece("inline provider's secret file missing", ("http", "websocket"), (),
          ("auth: {type: jwt, secret_file: /nonexistent/key}",), "{kind}.auth.secret_file",
          "secret file /nonexistent/key does not exist", "/nonexistent/key"),
    Piece("inline secret on a positive probe", ("http", "websocket"), (),
          ("auth: {type: jwt, secret: inline-value}",), "{kind}.auth.secret",
          "inline secrets are allowed only on negative probes", "inline-value"),
    Piece("reserved label", ("http", "websocket"), ("labels: {probe: x}",), (),
          "labels.probe", "label name must match", "labels: {probe"),
    Piece("timeout not under the interval", ("http", "websocket"),
          ("interval: 5s", "timeout: 10s"), (), "timeout", "timeout (10s) must be shorter",
          "timeout: 10s"),
    Piece("retries over the interval", ("http", "websocket"),
          ("interval: 10s", "timeout: 4s", "retries: 2"), (), "retries",
          "a run with its retries may take", "retries: 2"),
    Piece("credentials in the URL beside auth", ("http",), (),
          ("url: http://u:p@127.0.0.1:1/", "auth: present"), "http.auth",
          "cannot be combined with credentials in the URL", "auth: present"),
    Piece("token as subprotocol without auth", ("websocket",), (),
          ("send_token_as: [subprotocol]",), "websocket.send_token_as",
          "sending the token needs an auth provider", "send_token_as"),
    Piece("variant that cannot be built", ("http", "websocket"), (),
          ("auth: endpoint_ok", "expect_rejected: true", "variants: [expired]"),
          "{kind}.variants[0]", "variant expired cannot be built", "variants:"),
    Piece("variant needing a claim", ("http", "websocket"), (),
          ("auth: good_claims", "expect_rejected: true", "variants: [wrong_audience]"),
          "{kind}.variants[0]", "carry no aud", "variants:"),
]

URL = {"http": "url: http://127.0.0.1:1/", "websocket": "url: ws://127.0.0.1:1/"}


def build(kind: str, *pieces: Piece) -> str:
    probe = [line for piece in pieces for line in piece.probe]
    body = [line for piece in pieces for line in piece.body]
    if not any(line.startswith("url:") for line in body):
        body.insert(0, URL[kind])
    lines = [HEAD.rstrip("\n"), "  - name: p"]
    lines += [f"    {line}" for line in probe]
    lines.append(f"    {kind}:")
    lines += [f"      {line}" for line in body]
    return "\n".join(lines) + "\n"


def expected(text: str, kind: str, piece: Piece) -> tuple[str, str]:
    """The start of the line that must be said (file:line: key:) and a part of its message."""
    line = next(n for n, t in enumerate(text.splitlines(), 1) if piece.marker in t)
    key = piece.key.format(kind=kind)
    if not key.startswith("auth."):
        key = f"probes[0].{key}"
    return f"probes.yaml:{line}: {key}: ", piece.message


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, env=ENV, require_secrets=True)
    return info.value.problems


def said(problems: list[str], start: str, message: str) -> bool:
    return any(p.startswith(start) and message in p for p in problems)


def pairs() -> list[tuple[str, Piece, Piece]]:
    out = []
    for schema in SCHEMA:
        for semantic in SEMANTIC:
            if schema.keys() & semantic.keys():
                continue  # the same key cannot be wrong in both ways at once
            for kind in schema.kinds:
                if kind in semantic.kinds:
                    out.append((kind, schema, semantic))
    return out


@pytest.mark.parametrize("piece", SCHEMA + SEMANTIC, ids=lambda p: p.name)
def test_each_problem_alone_is_reported(piece: Piece) -> None:
    """The table itself: each piece alone causes its problem, and no other."""
    for kind in piece.kinds:
        text = build(kind, piece)
        problems = problems_of(text)
        start, message = expected(text, kind, piece)
        assert said(problems, start, message), (text, problems)
        assert len(problems) == 1, (text, problems)


@pytest.mark.parametrize(("kind", "schema", "semantic"), pairs(),
                         ids=[f"{k}-{a.name}-{b.name}" for k, a, b in pairs()])
def test_schema_error_does_not_hide_the_probes_other_problems(
        kind: str, schema: Piece, semantic: Piece) -> None:
    text = build(kind, schema, semantic)
    problems = problems_of(text)
    for piece in (schema, semantic):
        start, message = expected(text, kind, piece)
        assert said(problems, start, message), (piece.name, text, problems)


def test_every_problem_of_every_probe_at_once() -> None:
    """Probes each with a schema error and several whole-file problems: all of them in one
    run, in file order, each at its line."""
    text = HEAD + """\
  - name: ws
    interval: 5s
    timeout: 10s
    labels: {probe: x}
    websocket:
      url: http://127.0.0.1:1/ws
      auth: nosuch
  - name: api
    retry: 3
    http:
      url: ${API_URL}/x
      auth: good
      method: FETCH
  - name: neg
    websocket:
      url: ws://127.0.0.1:1/
      steps: [{expect: {timeout: soon}}]
      auth: {type: jwt, secret_file: /nonexistent/key}
      expect_rejected: true
      variants: [wrong_issuer]
"""
    assert problems_of(text) == [
        "probes.yaml:2: auth.good.secret_env: secret environment variable GOOD_SECRET is "
        "not set",
        "probes.yaml:12: probes[0].timeout: timeout (10s) must be shorter than the "
        "interval (5s)",
        "probes.yaml:13: probes[0].labels.probe: label name must match "
        "[a-zA-Z_][a-zA-Z0-9_]* and not be one of event, instance, job, le, location, "
        "outcome, phase, probe, reason, step, target, type, variant, version",
        "probes.yaml:15: probes[0].websocket.url: must be a ws:// or wss:// URL; got "
        "'http://127.0.0.1:1/ws'",
        "probes.yaml:16: probes[0].websocket.auth: unknown auth provider 'nosuch' (defined: "
        "good, present, good_claims, endpoint, endpoint_ok)",
        "probes.yaml:18: probes[1].retry: unknown key; did you mean 'retries'?",
        "probes.yaml:20: probes[1].http.url: environment variable API_URL is not set (set "
        "it, or give a default: ${API_URL:-value})",
        "probes.yaml:22: probes[1].http.method: must be 'GET', 'HEAD', 'POST', 'PUT', "
        "'PATCH', 'DELETE' or 'OPTIONS'",
        "probes.yaml:26: probes[2].websocket.steps[0].expect.timeout: must be a duration "
        "like 5s",
        "probes.yaml:27: probes[2].websocket.auth.secret_file: secret file /nonexistent/key "
        "does not exist",
        "probes.yaml:29: probes[2].websocket.variants[0]: variant wrong_issuer cannot be "
        "built: the claims of 'neg/inline' carry no iss",
    ]


def _no_url_defaults(text: str) -> str:
    """The shipped file with the defaults of its *_URL variables removed: what a user who
    deploys it without an environment has."""
    return re.sub(r"\$\{([A-Z_]*URL):-[^}]*\}", r"${\1}", text)


def test_no_environment_reports_urls_and_secrets_in_one_run(tmp_path: Path) -> None:
    """The shipped probes.yaml without its URL defaults and with no environment: every
    unset URL variable and every missing secret in one run of `check`."""
    text = _no_url_defaults(SHIPPED_CONFIG.read_text())
    url_lines = {n for n, line in enumerate(text.splitlines(), 1)
                 if re.search(r"\$\{[A-Z_]*URL\}", line)}
    secret_vars = set(re.findall(r"secret_env: ([A-Z_]+)", text))
    secret_vars |= set(re.findall(r"secret_fields_env: \{[^}]*?: ([A-Z_]+)", text))
    assert len(url_lines) >= 8 and secret_vars, "the shipped file changed shape"
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "monitor", "check", "-c", str(path)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    lines = out.stderr.splitlines()[1:]
    said_urls = {int(line.split(":")[1]) for line in lines
                 if re.search(r"environment variable [A-Z_]*URL is not set", line)}
    assert said_urls == url_lines, out.stderr
    for var in secret_vars:
        assert any(f"secret environment variable {var} is not set" in line
                   for line in lines), (var, out.stderr)
    assert "Traceback" not in out.stderr
    # And a second run after setting only the URLs says nothing new: the secrets were all
    # in the first.
    env = {"PATH": "/usr/bin:/bin", **{v: "ws://127.0.0.1:1" if "WS" in v else
                                        "http://127.0.0.1:1"
                                        for v in re.findall(r"\$\{([A-Z_]*URL)\}", text)}}
    second = subprocess.run([sys.executable, "-m", "monitor", "check", "-c", str(path)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert set(second.stderr.splitlines()[1:]) <= set(lines), second.stderr
