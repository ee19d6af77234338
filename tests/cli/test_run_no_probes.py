"""`synthmon run` on a file without probes starts (a reload may add some) but says so
loudly: a warning in the log and a line on stderr."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.servers import DaemonProc, start_daemon


def test_run_warns_loudly_on_zero_probes(tmp_path: Path, daemons: list[DaemonProc]) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text("# truncated\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAGING", "JWT_"))}
    daemon = start_daemon(path, env, tmp_path, "--log-format", "json")
    daemons.append(daemon)
    assert daemon.stop() == 0
    lines = daemon.logs().splitlines()
    assert f"synthmon: WARNING: {path}: the config defines no probes (empty or truncated " \
           "file?); nothing is being monitored" in lines
    events = [json.loads(line) for line in lines if line.startswith("{")]
    (warning,) = [e for e in events if e.get("event") == "no_probes"]
    assert warning["level"] == "warning" and warning["path"] == str(path)
