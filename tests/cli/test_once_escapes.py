"""No escape sequence from a target reaches a terminal through ``synthmon once`` (issue 20):
targets put clear-screen, window-title (OSC 0), hyperlink (OSC 8), colour and C1 sequences
into an HTTP reason phrase, header, content type and body, a refused upgrade and the
diagnostic GET after it, WebSocket event types and a close reason. Every output format of
``once`` shows them as visible characters (``␛[2J``) and carries no control character but
newline and tab, save the colours ``once`` itself asks for with ``--color always``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile import (
    ThreadedServers,
    close_frame,
    frame,
    read_request,
    switching_protocols,
)
from tests.support.servers import ROOT

# Clear the screen, set the window title, a hyperlink, red, and the same through C1 (CSI).
HOSTILE = ("\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]8;;http://evil.invalid/\x1b\\click\x1b]8;;\x1b\\"
           "\x1b[31mred\x1b[0m\x9b2J\x08\x08\r")
SHOWN = "␛[2J"  # how the start of it must look
# Any control character a terminal acts on (newline and tab are text).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SGR = re.compile("\x1b\\[[0-9;]*m")  # the colours rich writes itself


def _json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    raw = HOSTILE.encode("latin-1", "replace")
    body = b'{"error": "' + _json_escaped(HOSTILE).encode() + b'"} and raw: ' + raw
    writer.write(b"HTTP/1.1 500 Bad" + raw.replace(b"\r", b"") + b"\r\nContent-Type: text/"
                 + raw.replace(b"\r", b"") + b"\r\nX-Hostile: " + raw.replace(b"\r", b"")
                 + b"\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()


async def _ws_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade, the welcome, an event whose type is the sequence, then a close whose reason
    is it (cut to the 123 bytes a reason may have)."""
    headers = await read_request(reader)
    event = ('{"type": "' + _json_escaped(HOSTILE) + '"}').encode()
    writer.write(switching_protocols(headers) + frame(0x1, b'{"type": "connect"}')
                 + frame(0x1, event) + close_frame(1011, HOSTILE[:40]))
    await writer.drain()
    await asyncio.sleep(5)


async def _ws_refused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 403 to the upgrade, and to the diagnostic GET, with the sequence everywhere."""
    await read_request(reader)
    raw = HOSTILE.replace("\r", "").encode("latin-1", "replace")
    body = b"denied " + raw
    writer.write(b"HTTP/1.1 403 No" + raw + b"\r\nContent-Type: text/" + raw
                 + b"\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    servers = ThreadedServers()
    try:
        http, ws_close, ws_refused = (servers.raw(h) for h in (_http, _ws_close, _ws_refused))
        path = tmp_path / "probes.yaml"
        path.write_text(f"""\
defaults: {{retries: 0, timeout: 3s}}
probes:
  - name: http-escapes
    http: {{url: 'http://127.0.0.1:{http}/x'}}
  - name: ws-escapes-close
    websocket:
      url: ws://127.0.0.1:{ws_close}/ws
      steps:
        - expect: {{json: {{type: connect}}}}
        - expect_events: {{types: [agent_completed]}}
  - name: ws-escapes-refused
    websocket: {{url: 'ws://127.0.0.1:{ws_refused}/ws', diagnose: true}}
""")
        yield path
    finally:
        servers.close()


def once(config: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "once", "-c", str(config), *args],
        capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=60,
        env={**os.environ, "COLUMNS": "300", "NO_COLOR": "", "FORCE_COLOR": ""})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not CONTROL.search(proc.stderr), repr(proc.stderr)
    return proc.stdout


@pytest.mark.parametrize("fmt", [("table", "never"), ("table", "always"), ("json", None),
                                 ("junit", None)], ids=lambda f: "-".join(filter(None, f)))
def test_no_escape_sequence_from_a_target_reaches_the_terminal(
        config: Path, fmt: tuple[str, str | None]) -> None:
    kind, color = fmt
    out = once(config, "--format", kind, *(("--color", color) if color else ()))
    if color == "always":
        assert SGR.search(out)  # rich's own colours are there...
        out = SGR.sub("", out)  # ...and nothing else
    bad = CONTROL.search(out)
    assert bad is None, f"{bad.group()!r} at ...{out[max(0, bad.start() - 80):bad.end() + 40]!r}"
    if kind == "json":
        runs = {r["probe"]: r for r in json.loads(out)}
        assert runs["http-escapes"]["evidence"]["content_type"].startswith("text/" + SHOWN)
        assert runs["http-escapes"]["evidence"]["headers"]["X-Hostile"].startswith(SHOWN)
        assert SHOWN in runs["http-escapes"]["evidence"]["body_excerpt"]
        closed = runs["ws-escapes-close"]["evidence"]
        assert closed["close_reason"].startswith(SHOWN)
        assert any(SHOWN in e for e in closed["events_seen"]), closed
        refused = runs["ws-escapes-refused"]["evidence"]
        assert f"HTTP 403 No{SHOWN}" in refused["detail"]
        assert refused["diagnosis"]["content_type"].startswith("text/" + SHOWN)
    else:
        # What the target said is shown, made visible: the test is not vacuous.
        assert SHOWN in out or SHOWN.replace("[", "&#91;") in out, out
