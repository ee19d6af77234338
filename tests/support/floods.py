"""One hostile target at full speed, measured (issue 20): the floods, and the one way to
measure what one costs the probing process, shared by ``tests/test_floods.py`` and the
benchmarks (``python -m bench --only floods``).

The flooding servers are the hostile zoo's (:mod:`tests.support.hostile`, in a child
process of their own); each flood is probed by a ``python -m bench.workers flood`` child
(the daemon's run path and sinks in process), so that the peak RSS measured is the
probe's alone, neither the servers' nor the test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.hostile import ROOT, ZooProc

# The promise: one hostile target costs under this much RSS, and its run ends within its
# timeout plus this.
MAX_COST_MIB = 50.0
OVER_TIMEOUT = 1.0


@dataclass(frozen=True)
class Flood:
    name: str
    fault: str  # a name in tests.support.hostile.FAULTS
    outcome: str  # what every run of it must end in
    timeout: float  # the probe's
    step_timeout: float | None = None  # of the WebSocket events step

    def yaml(self, zoo: ZooProc) -> str:
        if self.fault.startswith("ws/"):
            step = "{types: [agent_started, agent_completed]"
            step += f", timeout: {self.step_timeout}s}}" if self.step_timeout else "}"
            body = (f"    websocket:\n      url: {zoo.url(self.fault, 'ws', '/ws')}\n"
                    "      steps:\n        - expect: {json: {type: connect}}\n"
                    f"        - expect_events: {step}\n")
        else:
            body = f"    http: {{url: '{zoo.url(self.fault, path='/x')}'}}\n"
        return (f"defaults: {{retries: 0}}\nprobes:\n  - name: {self.fault.replace('/', '-')}\n"
                f"    timeout: {self.timeout}s\n{body}")


FLOODS = [
    # Until the probe's deadline: the receive loop must end the run while frames still come.
    Flood("WebSocket: small frames of new types, nonstop", "ws/flood_small",
          "message_timeout", timeout=2.0),
    # Until the step's timeout (then the close, which this server never answers).
    Flood("WebSocket: 60 KB frames of new types, nonstop", "ws/flood_wide",
          "message_timeout", timeout=3.0, step_timeout=1.5),
    Flood("HTTP: 100 headers of 8 KB on a 500", "http/many_headers", "unexpected_status",
          timeout=2.0),
    Flood("HTTP: a gzip body inflating to 256 MiB", "http/gzip_bomb", "success", timeout=2.0),
    Flood("HTTP: a 1 GiB body", "http/gigabyte", "success", timeout=2.0),
]


def measure(zoo: ZooProc, flood: Flood, workdir: Path, runs: int = 2,
            loop: str = "uvloop") -> dict[str, Any]:
    """What ``runs`` runs of ``flood`` cost a process of their own (bench.workers flood):
    ``peak_cost_mib``, each run's ``seconds`` and ``outcome``, ``longest_log_line_bytes``,
    ``max_loop_stall_ms``, ``history_json_bytes``, ..."""
    config = workdir / f"{flood.fault.replace('/', '-')}-{loop}.yaml"
    config.write_text(flood.yaml(zoo))
    done = subprocess.run(
        [sys.executable, "-m", "bench.workers", "flood", "--config", str(config),
         "--runs", str(runs), "--event-loop", loop],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
        text=True, timeout=runs * (flood.timeout + OVER_TIMEOUT) + 60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out
