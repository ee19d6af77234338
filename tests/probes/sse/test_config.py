"""An ``sse:`` probe in probes.yaml: what loads, what is refused with file:line, and that
its URL and headers are secret-checked as every kind's are."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, load_text


def load(body: str, head: str = "") -> object:
    return load_text(f"{head}probes:\n  - name: s\n{body}", env={"API_KEY": "k-0123456789",
                                                               "STREAM_URL": "http://x.test"})


def problems(body: str, head: str = "") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(body, head)
    return info.value.problems


def test_the_contracts_example_loads() -> None:
    config = load_text("""
defaults: {timeout: 30s, interval: 2m}
probes:
  - name: chat-stream
    sse:
      url: http://staging.test/v1/chat/completions
      method: POST
      json_body: {model: staging, stream: true, messages: [{role: user, content: ping}]}
      expect: {status: [200]}
      first_event_within: 3s
      max_gap: 5s
      events:
        field: [event, data.type, data.object]
        types: [chat.completion.chunk]
        count: {chat.completion.chunk: {min: 2}}
      done: "[DONE]"
      timeout: 30s
""", env={})
    probe = config.probes[0]
    spec = probe.spec.sse
    assert probe.type == "sse" and spec is not None and spec.events is not None
    assert spec.events.needed("chat.completion.chunk") == 2
    assert spec.event_keys() == {("stream", "chat.completion.chunk")}


@pytest.mark.parametrize(("body", "problem"), [
    ("    sse: {url: 'ws://x.test/'}\n", "probes[0].sse.url: must be an http:// or https://"),
    ("    timeout: 5s\n    sse: {url: 'http://x.test/', timeout: 30s}\n",
     "probes[0].sse.timeout: (30s) is longer than the probe's timeout (5s)"),
    ("    sse: {url: 'http://x.test/', events: {types: [a], count: {b: 2}}}\n",
     "probes[0].sse.events.count.b: 'b' is not in types"),
    ("    sse: {url: 'http://x.test/', events: {types: [a], aliases: {b: c}}}\n",
     "probes[0].sse.events.aliases.b: 'b' is not in types"),
    ("    sse: {url: 'http://x.test/', bogus: 1}\n", "probes[0].sse.bogus"),
    ("    sse: {url: 'http://x.test/', body: a, json_body: {}}\n", "body and json_body"),
    ("    sse: {url: 'http://x.test/'}\n    http: {url: 'http://x.test/'}\n",
     "exactly one of http, websocket, sse or flow"),
])
def test_refused_with_the_key(body: str, problem: str) -> None:
    found = problems(body)
    assert any(problem in p for p in found), found


def test_secrets_in_its_headers_and_url_are_redacted() -> None:
    config = load("    sse:\n      url: ${STREAM_URL}/s?key=${API_KEY}\n"
                  "      headers: {X-Api-Key: '${API_KEY}'}\n")
    assert "k-0123456789" in config.secrets  # type: ignore[attr-defined]
