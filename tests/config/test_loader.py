"""probes.yaml loading: specs, substitution, and errors that say file, line and key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pydantic
import pytest

from monitor.config import (
    ConfigError,
    JwtAuth,
    format_duration,
    json_schema,
    load_file,
    load_text,
    parse_duration,
    status_matches,
)

GOOD = """\
defaults: {interval: 60s, timeout: 10s, labels: {environment: staging}}
auth:
  staging_jwt:
    type: jwt
    algorithm: HS256
    secret_env: JWT_SECRET_STAGING
    claims: {sub: u1, type: access}
    ttl: 30m
probes:
  - name: api-health
    http:
      url: ${STAGING_URL}/api/health
      expect:
        status: [200, "300-399", 4xx]
        json: {status: healthy}
        max_latency: 100ms
  - name: ws
    interval: 30s
    timeout: 5s
    labels: {team: chat}
    websocket:
      url: ${STAGING_WS_URL:-ws://127.0.0.1:1}/api/v1/websocket
      auth: staging_jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      steps:
        - expect: {json: {type: connect}, timeout: 5s}
        - send: {json: {type: user_message}}
        - expect_events: {types: [a, b], timeout: 3s, fail_on: [error_message]}
"""

ENV = {"STAGING_URL": "http://127.0.0.1:8000", "JWT_SECRET_STAGING": "s3cret-value"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, "probes.yaml", env=ENV if env is None else env)
    return info.value.problems


def test_good_config_loads_into_immutable_specs() -> None:
    config = load_text(GOOD, env=ENV)
    assert [p.name for p in config.probes] == ["api-health", "ws"]
    http, ws = config.probes
    assert http.spec.http is not None and http.spec.http.url == "http://127.0.0.1:8000/api/health"
    assert http.interval == 60 and http.timeout == 10
    assert http.spec.http.expect.max_latency == pytest.approx(0.1)
    assert status_matches(307, http.spec.http.expect.status)
    assert status_matches(404, http.spec.http.expect.status)
    assert not status_matches(500, http.spec.http.expect.status)
    assert ws.interval == 30 and ws.timeout == 5
    assert dict(ws.labels) == {"environment": "staging", "team": "chat"}
    assert config.label_names == ("environment", "team")
    assert isinstance(ws.auth, JwtAuth) and ws.auth_name == "staging_jwt"
    assert ws.spec.websocket is not None
    assert ws.spec.websocket.url == "ws://127.0.0.1:1/api/v1/websocket"
    assert [s.kind for s in ws.spec.websocket.steps] == ["expect", "send", "expect_events"]
    with pytest.raises(pydantic.ValidationError) as frozen:
        ws.spec.name = "other"  # type: ignore[misc]
    assert [e["type"] for e in frozen.value.errors()] == ["frozen_instance"]
    assert ws.spec.name == "ws"


def test_error_names_file_line_and_key() -> None:
    bad = GOOD.replace("timeout: 5s}", "timeout: 5x}")
    assert problems(bad) == [
        "probes.yaml:27: probes[1].websocket.steps[0].expect.timeout: must be a duration like 5s"
    ]


def test_several_errors_reported_at_once_with_did_you_mean() -> None:
    bad = (GOOD.replace("subprotocols: [jwt-auth]", "subprotocol: [jwt-auth]")
           .replace("url: ${STAGING_URL}/api/health", "url: ftp://x")
           .replace("status: [200,", "status: [999,"))
    assert problems(bad) == [
        "probes.yaml:12: probes[0].http.url: must be an http:// or https:// URL; got 'ftp://x'",
        "probes.yaml:14: probes[0].http.expect.status: must be status codes like [200, 307], "
        "ranges like '200-299' or '2xx'; got 999",
        "probes.yaml:25: probes[1].websocket.subprotocol: unknown key; "
        "did you mean 'subprotocols'?",
    ]


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems("probes:\n  - name: a\n    http: {url: [\n")
    assert len(found) == 1 and found[0].startswith("probes.yaml:") and "invalid YAML" in found[0]


def test_missing_env_var_and_default() -> None:
    found = problems(GOOD, env={})
    assert found == [
        "probes.yaml:12: probes[0].http.url: environment variable STAGING_URL is not set "
        "(set it, or give a default: ${STAGING_URL:-value})"
    ]
    config = load_text(GOOD.replace("${STAGING_URL}", "${STAGING_URL:-http://h}"), env={})
    assert config.probes[0].spec.url == "http://h/api/health"


def test_missing_secret_is_kept_not_a_load_error() -> None:
    config = load_text(GOOD, env={"STAGING_URL": "http://x"})
    assert [(m.key, m.line, m.message) for m in config.missing_secrets] == [
        ("auth.staging_jwt.secret_env", 6,
         "secret environment variable JWT_SECRET_STAGING is not set")]
    # A missing secret is no warning (the only one: the route comparison's missing peer).
    assert [w.split(": ")[0] for w in config.warnings] == ["probes.yaml:22"]
    # `check` asks for every secret: then it is an error at the provider's line.
    with pytest.raises(ConfigError) as info:
        load_text(GOOD, env={"STAGING_URL": "http://x"}, require_secrets=True)
    assert info.value.problems == [
        "probes.yaml:6: auth.staging_jwt.secret_env: secret environment variable "
        "JWT_SECRET_STAGING is not set"]


def test_semantic_errors() -> None:
    text = textwrap.dedent("""\
        auth:
          a1: {type: jwt, secret_env: X}
        probes:
          - name: p
            interval: 5s
            timeout: 10s
            http: {url: "http://127.0.0.1:1/", auth: a2}
          - name: p
            http: {url: "http://127.0.0.1:1/"}
          - name: q
            websocket:
              url: ws://127.0.0.1:1/
              auth: {type: jwt, secret: inline-secret}
        """)
    found = problems(text)
    assert "probes.yaml:6: probes[0].timeout: timeout (10s) must be shorter than the " \
           "interval (5s)" in found
    assert any("probes.yaml:7: probes[0].http.auth: unknown auth provider 'a2'" in p
               for p in found)
    assert "probes.yaml:8: probes[1].name: duplicate probe name 'p' (first used by probes[0])" \
        in found
    assert any(p.startswith("probes.yaml:13: probes[2].websocket.auth.secret: inline secrets "
                            "are allowed only on negative probes") for p in found)


def test_inline_secret_allowed_on_negative_probe() -> None:
    text = ("probes:\n  - name: neg\n    websocket:\n      url: ws://127.0.0.1:1/\n"
            "      auth: {type: jwt, secret: wrong}\n      expect_rejected: true\n")
    config = load_text(text, env={})
    assert config.probes[0].auth is not None


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("2h", 7200.0), (3, 3.0), (0.5, 0.5)])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "5x", "", "s", "-1s", "0s", True, None, [1]])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(0.1) == "100ms" and format_duration(90) == "90s"


def test_asymmetric_jwt_needs_key_file() -> None:
    found = problems("auth:\n  k: {type: jwt, algorithm: RS256, secret_env: X}\n")
    assert found == ["probes.yaml:2: auth.k: algorithm RS256 needs private_key_file"]


def test_unknown_top_level_key_lists_choices() -> None:
    found = problems("probe: []\n")
    assert found == ["probes.yaml:1: probe: unknown key; did you mean 'probes'?"]


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_file(tmp_path / "nope.yaml")
    assert "file not found" in info.value.problems[0]


def test_schema_is_generated_from_the_model() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {"defaults", "auth", "probes"}
    assert "ProbeSpec" in schema["$defs"] and "WebSocketSpec" in schema["$defs"]


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("60s", "sixty"))
    env = {"PATH": "/usr/bin:/bin", **ENV}
    run = [sys.executable, "-m", "monitor", "check", "-c"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, env=env, timeout=30)
    assert ok.returncode == 0, ok.stderr
    ko = subprocess.run([*run, str(bad)], capture_output=True, text=True, env=env, timeout=30)
    assert ko.returncode == 1
    assert f"{bad}:1: defaults.interval: must be a duration like 5s" in ko.stderr
    assert "Traceback" not in ko.stderr
    nosecret = subprocess.run([*run, str(good)], capture_output=True, text=True, timeout=30,
                              env={"PATH": "/usr/bin:/bin", "STAGING_URL": "http://x"})
    assert nosecret.returncode == 1 and "JWT_SECRET_STAGING is not set" in nosecret.stderr


def test_shipped_probes_yaml_is_valid() -> None:
    shipped = Path(__file__).parents[2] / "probes.yaml"
    config = load_file(shipped, env={"JWT_SECRET_STAGING": "x", "E2E_PASSWORD": "y"})
    names = {p.name for p in config.probes}
    assert {"ws-golden-path", "ws-alternate-path", "ws-rejects-bad-token", "e2e-chat"} <= names
    assert not config.warnings and not config.missing_secrets
    # The flow's password, left to its empty default, is a missing secret as a provider's is.
    unset = load_file(shipped, env={"JWT_SECRET_STAGING": "x"}).missing_secrets
    assert [m.message for m in unset] == ["secret environment variable E2E_PASSWORD is not set"]


def test_unusable_urls_are_refused_at_load_without_echoing_credentials() -> None:
    found = problems("probes:\n  - name: a\n    websocket: {url: 'ws://h:99999/'}\n"
                     "  - name: b\n    http: {url: 'http://user:pw@[::1/'}\n")
    assert found == ["probes.yaml:3: probes[0].websocket.url: is not a valid URL: "
                     "Port out of range 0-65535",
                     "probes.yaml:5: probes[1].http.url: is not a valid URL: Invalid IPv6 URL"]


def test_websocket_header_with_a_line_break_is_refused_at_load() -> None:
    found = problems("probes:\n  - name: w\n    websocket:\n      url: ws://127.0.0.1:1/\n"
                     "      headers: {X-A: \"a\\nX-B: b\"}\n")
    assert found == ["probes.yaml:5: probes[0].websocket.headers: X-A: line breaks are not "
                     "allowed in a header"]


def test_retries_resolved_from_defaults_and_per_probe() -> None:
    config = load_text(textwrap.dedent("""\
        defaults: {interval: 60s, timeout: 10s}
        probes:
          - {name: a, http: {url: 'http://x/'}}
          - {name: b, retries: 0, http: {url: 'http://x/'}}
          - {name: c, retries: 3, retry_delay: 2s, timeout: 5s, http: {url: 'http://x/'}}
          - {name: d, retries: "${R:-2}", http: {url: 'http://x/'}}
        """), env={})
    got = {p.name: (p.retries, p.retry_delay, p.budget) for p in config.probes}
    assert got == {"a": (1, 5.0, 25.0), "b": (0, 5.0, 10.0), "c": (3, 2.0, 26.0),
                   "d": (2, 5.0, 40.0)}


def test_bad_retries_and_budgets_are_load_errors_with_lines_all_together() -> None:
    found = problems(textwrap.dedent("""\
        defaults:
          interval: 20s
          retry_delay: soon
        probes:
          - name: a
            retries: 6
            http: {url: 'http://x/'}
          - name: b
            retries: -1
            http: {url: 'http://x/'}
          - name: c
            retries: true
            http: {url: 'http://x/'}
        """))
    assert found == [
        "probes.yaml:3: defaults.retry_delay: must be a duration like 5s",
        "probes.yaml:6: probes[0].retries: must be a whole number from 0 to 5",
        "probes.yaml:9: probes[1].retries: must be a whole number from 0 to 5",
        "probes.yaml:12: probes[2].retries: must be a whole number from 0 to 5",
    ]
    found = problems(textwrap.dedent("""\
        defaults: {interval: 20s}
        probes:
          - {name: a, http: {url: 'http://x/'}}
          - {name: b, http: {url: 'http://x/'}}
          - name: c
            interval: 30s
            timeout: 13s
            http: {url: 'http://x/'}
          - {name: d, retries: 0, http: {url: 'http://x/'}}
          - {name: e, interval: 10s, timeout: 12s, retries: 0, http: {url: 'http://x/'}}
        """))
    # The defaults do not fit 20s (once for the file, not per probe); c's own timeout does
    # not fit its 30s; d turns retries off; e's timeout alone is already too long.
    assert found == [
        "probes.yaml:1: defaults.retries: a run with its retries may take 25s (timeout 10s x 2 "
        "attempts + retry_delay 5s x 1), which must be shorter than the interval (20s) so "
        "that retries never overlap the next run; lower retries (0 turns them off), "
        "retry_delay or timeout, or raise the interval",
        "probes.yaml:7: probes[2].timeout: a run with its retries may take 31s (timeout 13s "
        "x 2 attempts + retry_delay 5s x 1), which must be shorter than the interval (30s) so "
        "that retries never overlap the next run; lower retries (0 turns them off), "
        "retry_delay or timeout, or raise the interval",
        "probes.yaml:10: probes[4].timeout: timeout (12s) must be shorter than the interval "
        "(10s)",
    ]


def test_an_error_at_the_end_of_the_file_names_its_last_line() -> None:
    # libyaml marks this one past the last line (no newline at the end): found by the fuzz.
    text = 'probes:\n- name: "0"\n  http: {url: "http://a"}\n&a [1, 2]'
    with pytest.raises(ConfigError) as info:
        load_text(text, env={})
    assert info.value.problems == ["probes.yaml:4: invalid YAML: could not find expected ':'"]


def test_the_kept_tags_of_plain_scalars_are_the_resolvers_answers() -> None:
    """source._Resolver keeps the tag of a plain scalar once matched: asked again (from the
    kept tags) or anew, it answers as PyYAML's BaseResolver does with the same resolvers."""
    from yaml.nodes import MappingNode, ScalarNode
    from yaml.resolver import BaseResolver

    from monitor.config.source import _Resolver

    values = ["", "~", "null", "Null", "true", "False", "yes", "on", "017", "0o17", "0x1F",
              "0b101", "1_000", "-12", "+3", "1.5", "1e3", "-.inf", ".NaN", "1:30",
              "2024-01-02", "2024-1-2 3:04:05", "<<", "http://x", "p000001", "200", "60s"]
    resolver = _Resolver()
    for implicit in ((True, False), (False, True), (False, False)):
        for value in values * 2:  # the second time from the kept tags
            assert resolver.resolve(ScalarNode, value, implicit) == \
                BaseResolver.resolve(resolver, ScalarNode, value, implicit), (value, implicit)
    assert resolver.resolve(MappingNode, None, (True, False)) == \
        BaseResolver.resolve(resolver, MappingNode, None, (True, False))


def test_a_load_runs_without_the_cyclic_collector_and_gives_it_back() -> None:
    """The collector would walk the growing heap again and again during a big load (twice
    the load's time at 10,000 probes); it is paused for the load and on again after it,
    whether the load succeeded or failed, and stays off if it was off."""
    import gc

    text = "probes:\n" + "".join(
        f"  - {{name: p{i}, http: {{url: 'http://127.0.0.1:1/{i}'}}}}\n" for i in range(3000))
    paused: list[bool] = []  # for each collection: was it during the load?

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            paused.append(not gc.isenabled())

    gc.callbacks.append(count)
    try:
        assert len(load_text(text, env={}).probes) == 3000
        # One collection may follow at once (the load's allocations counted), none within.
        assert not any(paused) and gc.isenabled()
        with pytest.raises(ConfigError):
            load_text(text + "  - {name: p0}\n", env={})
        assert gc.isenabled()
        gc.disable()
        try:
            load_text(text, env={})
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        gc.callbacks.remove(count)
