"""`check` says what the route comparison is missing: a WebSocket probe with credentials
(that diagnoses a refused upgrade, the default) and no positive WebSocket probe on another
path of the same host with the same credentials gets a warning at its URL."""

from __future__ import annotations

import pytest

from monitor.config import load_text

HEAD = "auth:\n  a: {type: jwt, secret_env: S}\n  b: {type: jwt, secret_env: S}\nprobes:\n"
MAIN = '  - name: main\n    websocket: {url: "ws://h:1/api/v1/websocket", auth: a}\n'


def _warnings(probes: str) -> list[str]:
    return list(load_text(HEAD + probes, env={"S": "secret-0123456789abcdef"}).warnings)


def test_alone_it_is_told_what_is_missing() -> None:
    (warning,) = _warnings(MAIN)
    assert warning.startswith("probes.yaml:6: probes[0].websocket.url: no websocket probe on "
                              "another path of h:1 with the same credentials (a)")
    assert "SynthmonWebSocketRouteLikelyMissing" in warning


@pytest.mark.parametrize("peer", [
    '  - name: peer\n    websocket: {url: "ws://h:2/ws", auth: a}\n',          # another host
    '  - name: peer\n    websocket: {url: "ws://h:1/api/v1/websocket", auth: a}\n',  # same path
    '  - name: peer\n    websocket: {url: "ws://h:1/ws", auth: b}\n',          # other credentials
    '  - name: peer\n    websocket: {url: "ws://h:1/ws", auth: a, expect_rejected: true}\n',
])
def test_a_peer_that_proves_nothing_does_not_count(peer: str) -> None:
    assert any(w.startswith("probes.yaml:6: probes[0].websocket.url: no websocket probe")
               for w in _warnings(MAIN + peer))


def test_a_probe_of_another_path_with_the_same_credentials_is_enough() -> None:
    peer = '  - name: peer\n    websocket: {url: "ws://h:1/ws", auth: a}\n'
    assert _warnings(MAIN + peer) == []


def test_without_credentials_or_diagnosis_nothing_to_tell_apart() -> None:
    assert _warnings('  - name: p\n    websocket: {url: "ws://h:1/x"}\n') == []
    assert _warnings('  - name: p\n    websocket: {url: "ws://h:1/x", auth: a, '
                     'diagnose: false}\n') == []
