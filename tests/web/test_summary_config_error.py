"""A config_error reads as what it is, on every surface: the probe was not run, nothing was
sent, and why. Never as a network failure ("no HTTP answer to the upgrade")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.outcomes import Outcome
from monitor.result import Evidence, Result
from monitor.web.summary import handshake, seen
from tests.support.servers import ROOT

MISSING = "secret environment variable JWT_SECRET_STAGING is not set"


@pytest.mark.parametrize("kind", ["websocket", "http"])
def test_summary_says_not_run(kind: str) -> None:
    r = Result(probe="p", type=kind, target="ws://127.0.0.1:1/", outcome=Outcome.CONFIG_ERROR,
               started_at=0.0, duration_seconds=0.0, evidence=Evidence(detail=MISSING))
    assert seen(r) == f"not run: {MISSING}"
    assert handshake(r) == (None if kind == "http" else "not run: nothing was sent")


def test_a_network_failure_is_still_worded_as_one() -> None:
    r = Result(probe="p", type="websocket", target="ws://127.0.0.1:1/",
               outcome=Outcome.CONNECT_REFUSED, started_at=0.0, duration_seconds=0.0,
               evidence=Evidence(detail="connection refused"))
    assert handshake(r) == "no HTTP answer to the upgrade (connect_refused)"


def test_once_table_says_not_run(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text("auth:\n  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING}\nprobes:\n"
                    "  - {name: ws, websocket: {url: 'ws://127.0.0.1:1/', auth: jwt}}\n")
    out = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                          "--color", "never"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
    assert out.returncode == 1
    assert "not run: JWT secret: environment variable JWT_SECRET_STAGING is not set" \
        in out.stdout
    assert "no HTTP answer" not in out.stdout
    # Said once on stderr, where it is configured.
    assert out.stderr == f"warning: {path}:2: auth.jwt.secret_env: {MISSING}\n"
