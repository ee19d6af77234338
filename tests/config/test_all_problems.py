"""`check` reports every problem of a file in one run, schema and semantic alike, in file
order; a missing secret is said once, at its provider; zero probes is an error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_text

# Each kind of problem once, in a file that needed three runs of `check` before.
MIXED = textwrap.dedent("""\
    defaults: {interval: 10s, timeout: 2s}
    auth:
      staging_jwt:
        type: jwt
        secret_env: JWT_SECRET_STAGING
      broken: {type: jwt, ttl: forever}
    probes:
      - name: both-kinds
        http: {url: "http://127.0.0.1:1/", method: FETCH}
        websocket: {url: "ws://127.0.0.1:1/"}
      - name: dup
        http: {url: "http://127.0.0.1:1/", auth: staging_jwt}
      - name: dup
        timeout: 30s
        http: {url: "http://127.0.0.1:1/", auth: staging_jtw}
      - name: ws
        websocket:
          url: ws://127.0.0.1:1/
          auth: staging_jwt
          stepz: []
          steps:
            - {send: {text: hi}, expect: {regex: x, timeout: soon}}
      - name: uses-broken
        http: {url: "http://127.0.0.1:1/", auth: broken}
    """)


def test_every_problem_in_one_run_in_file_order() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(MIXED, env={}, require_secrets=True)
    assert info.value.problems == [
        "probes.yaml:5: auth.staging_jwt.secret_env: secret environment variable "
        "JWT_SECRET_STAGING is not set",
        "probes.yaml:6: auth.broken.ttl: must be a duration like 5s",
        "probes.yaml:6: auth.broken: needs exactly one of secret_env, secret_file, "
        "private_key_file",
        "probes.yaml:8: probes[0]: each probe needs exactly one of http, websocket, sse or flow",
        "probes.yaml:9: probes[0].http.method: must be 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', "
        "'DELETE' or 'OPTIONS'",
        "probes.yaml:13: probes[2].name: duplicate probe name 'dup' (first used by probes[1])",
        "probes.yaml:14: probes[2].timeout: timeout (30s) must be shorter than the "
        "interval (10s)",
        "probes.yaml:15: probes[2].http.auth: unknown auth provider 'staging_jtw'; did you "
        "mean 'staging_jwt'?",
        "probes.yaml:20: probes[3].websocket.stepz: unknown key; did you mean 'steps'?",
        "probes.yaml:22: probes[3].websocket.steps[0].expect.timeout: must be a duration "
        "like 5s",
        "probes.yaml:22: probes[3].websocket.steps[0]: each step needs exactly one of "
        "expect, send, expect_events",
    ]


def test_missing_secret_said_once_however_many_probes_use_it() -> None:
    text = textwrap.dedent("""\
        auth:
          staging_jwt: {type: jwt, secret_env: JWT_SECRET_STAGING}
        probes:
          - {name: a, http: {url: "http://127.0.0.1:1/", auth: staging_jwt}}
          - {name: b, http: {url: "http://127.0.0.1:1/", auth: staging_jwt}}
          - {name: c, websocket: {url: "ws://127.0.0.1:1/", auth: staging_jwt}}
          - name: d
            websocket:
              url: ws://127.0.0.1:1/
              auth: {type: jwt, secret_file: /nonexistent/key}
        """)
    config = load_text(text, env={})  # the daemon starts: those probes report config_error
    assert [m.text for m in config.missing_secrets] == [
        "probes.yaml:2: auth.staging_jwt.secret_env: secret environment variable "
        "JWT_SECRET_STAGING is not set",
        "probes.yaml:10: probes[3].websocket.auth.secret_file: secret file /nonexistent/key "
        "does not exist",
    ]
    with pytest.raises(ConfigError) as info:
        load_text(text, env={}, require_secrets=True)
    assert info.value.problems == [m.text for m in config.missing_secrets]
    assert [m.key for m in load_text(text, env={"JWT_SECRET_STAGING": "x"}).missing_secrets] \
        == ["probes[3].websocket.auth.secret_file"]


def _synthmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_check_prints_every_problem_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(MIXED)
    out = _synthmon("check", "-c", str(path))
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[0] == f"{path}: 11 error(s)"
    assert lines[1] == (f"{path}:5: auth.staging_jwt.secret_env: secret environment variable "
                        "JWT_SECRET_STAGING is not set")
    assert [int(line.split(":")[1]) for line in lines[1:]] == \
        [5, 6, 6, 8, 9, 13, 14, 15, 20, 22, 22]
    assert "Traceback" not in out.stderr and "warning" not in out.stderr


@pytest.mark.parametrize(("text", "said"), [
    ("", "no probes defined"), ("# nothing yet\n", "no probes defined"),
    ("defaults: {interval: 30s}\n", "no probes defined"), ("probes: []\n", "no probes defined"),
    # Truncated after the key: the list itself is missing.
    ("probes:\n", "probes: must be a list of probes (- name: ...); it is empty"),
])
def test_zero_probes_is_an_error_for_check_and_once(tmp_path: Path, text: str,
                                                     said: str) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(text)
    for command in ("check", "once"):
        out = _synthmon(command, "-c", str(path))
        assert out.returncode == 1, (command, out)
        assert said in out.stderr, (command, out.stderr)
        assert "OK" not in out.stdout and "passed" not in out.stdout
