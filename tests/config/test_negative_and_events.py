"""The keys issue 12 adds to probes.yaml: variants and their companions, event field lists
and aliases. Bad input is reported with file:line, together with every other error."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, load_text

ENV = {"S": "a-secret-of-some-length"}
HEAD = """\
auth:
  good: {type: jwt, secret_env: S, claims: {sub: a, iss: me, aud: you}}
  noaud: {type: jwt, secret_env: S, claims: {sub: a}}
  ep: {type: token_endpoint, url: "http://127.0.0.1:9/t"}
probes:
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(HEAD + text, env=ENV)
    return info.value.problems


def test_every_variant_is_its_own_probe_run_with_a_key() -> None:
    cfg = load_text(HEAD + """\
  - name: neg
    websocket:
      url: ws://127.0.0.1:9/ws
      auth: good
      expect_rejected: true
      variants: [no_token, expired, not_yet_valid, bad_signature, alg_none, wrong_issuer,
                 wrong_audience, token_in_query_only, bypass_headers]
      bypass_headers: {X-E2E-Test: "true"}
      refused_with: [401, 403, 1008, 4001]
  - name: plain
    http: {url: "http://127.0.0.1:9/"}
""", env=ENV)
    keys = [p.key for p in cfg.probes]
    assert keys[:2] == ["neg@no_token", "neg@expired"] and keys[-1] == "plain"
    assert len(keys) == 10 and all(p.name == "neg" for p in cfg.probes[:9])
    assert cfg.probes[0].spec.websocket is not None
    assert cfg.probes[0].spec.websocket.refused_with == (401, 403, 1008, 4001)


def test_bad_input_is_reported_together_with_lines() -> None:
    out = problems("""\
  - name: neg
    websocket:
      url: ws://127.0.0.1:9/ws
      auth: good
      expect_rejected: true
      variants: [no_token, not_a_variant]
      bypass_headers: {X-E2E-Test: "true"}
      steps:
        - expect_events:
            types: [agent_started]
            field: [event, ""]
            aliases: {agent_completed: [agent_complete]}
  - name: other
    http: {url: "ftp://x"}
""")
    text = "\n".join(out)
    assert "probes.yaml:11: probes[0].websocket.variants[1]: must be 'no_token'" in text
    assert ("probes.yaml:12: probes[0].websocket.bypass_headers: is set, but the "
            "bypass_headers variant is not in variants") in text
    assert "probes.yaml:16: probes[0].websocket.steps[0].expect_events.field: path 1" in text
    assert ("probes.yaml:17: probes[0].websocket.steps[0].expect_events.aliases."
            "agent_completed: 'agent_completed' is not in types") in text
    assert "probes.yaml:19: probes[1].http.url: must be an http:// or https:// URL" in text


@pytest.mark.parametrize(("auth", "variants", "expected"), [
    ("noaud", "[wrong_audience]", "variant wrong_audience cannot be built: the claims of "
                                  "'noaud' carry no aud"),
    ("noaud", "[wrong_issuer]", "variant wrong_issuer cannot be built: the claims of 'noaud' "
                                "carry no iss"),
    ("ep", "[no_token, expired]", "variant expired cannot be built: it needs a jwt auth "
                                  "provider, and 'ep' is token_endpoint"),
])
def test_a_variant_that_cannot_be_built_is_named(auth: str, variants: str,
                                                 expected: str) -> None:
    out = problems(f"""\
  - name: neg
    http:
      url: "http://127.0.0.1:9/"
      auth: {auth}
      expect_rejected: true
      variants: {variants}
""")
    assert any(p.startswith("probes.yaml:11: probes[0].http.variants[") and expected in p
               for p in out), out


def test_variants_need_a_negative_probe_and_a_provider() -> None:
    out = problems("""\
  - name: neg
    http:
      url: "http://127.0.0.1:9/"
      variants: [no_token]
""")
    assert any("variants: variants need expect_rejected: true" in p for p in out), out
    out = problems("""\
  - name: neg
    http:
      url: "http://127.0.0.1:9/"
      expect_rejected: true
      variants: [no_token]
""")
    assert any("no auth provider to derive it from" in p for p in out), out


def test_field_takes_one_path_or_a_list_and_aliases_one_or_many() -> None:
    cfg = load_text(HEAD + """\
  - name: ev
    websocket:
      url: ws://127.0.0.1:9/ws
      steps:
        - expect_events: {types: [a, b], field: payload.kind, aliases: {a: x, b: [y, z]}}
        - expect_events: {types: [a], field: [event, type], fail_on_duplicates: true}
""", env=ENV)
    spec = cfg.probes[0].spec.websocket
    assert spec is not None
    first, second = (s.expect_events for s in spec.steps)
    assert first is not None and second is not None
    assert first.paths == ("payload.kind",) and first.aliases == {"a": ("x",), "b": ("y", "z")}
    assert first.event_of("z") == "b" and first.event_of("a") == "a"
    assert first.event_of("q") is None
    assert second.paths == ("event", "type") and second.fail_on_duplicates
