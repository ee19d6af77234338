"""The run-history sink: the last N results per probe, for the status page and the API.

Memory is bounded two ways, because a daemon with 10,000 probes would otherwise hold a
million full results (about 1.6 KB each, most of it response headers and phase timings):

* every probe keeps at most ``depth`` runs, and all probes together at most
  ``TOTAL_RUNS`` (so 100 each up to 1,000 probes, 10 each at 10,000);
* only the newest run and failed runs keep their full evidence; an older success keeps its
  outcome, timings, status and one-line detail, which is all the status page shows of it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

from monitor.config import Config
from monitor.result import Evidence, Result

DEFAULT_DEPTH = 100
TOTAL_RUNS = 100_000
MIN_DEPTH = 10


def slim(result: Result) -> Result:
    """A successful run without the bulk of its evidence."""
    ev = result.evidence
    return replace(result, phases=(), evidence=Evidence(
        detail=ev.detail, status_code=ev.status_code, content_type=ev.content_type,
        close_code=ev.close_code, subprotocol=ev.subprotocol))


class History:
    def __init__(self) -> None:
        self.depth = DEFAULT_DEPTH
        self._lock = threading.Lock()
        self._runs: dict[str, deque[Result]] = {}
        self._since: dict[str, float] = {}  # start of the current streak of the last outcome
        self._order: list[str] = []

    def configure(self, config: Config) -> None:
        with self._lock:
            self._order = [p.name for p in config.probes]
            self.depth = max(MIN_DEPTH, min(DEFAULT_DEPTH, TOTAL_RUNS // max(len(self._order), 1)))
            old = self._runs
            self._runs = {n: deque(old.get(n, ()), maxlen=self.depth) for n in self._order}
            self._since = {n: t for n, t in self._since.items() if n in self._runs}

    def observe(self, result: Result) -> None:
        with self._lock:
            runs = self._runs.get(result.probe)
            if runs is None:
                return
            if not runs or runs[-1].outcome is not result.outcome:
                self._since[result.probe] = result.started_at
            if runs and runs[-1].success:
                runs[-1] = slim(runs[-1])
            runs.append(result)

    def probes(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def runs(self, probe: str) -> list[Result]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._runs.get(probe, ())))

    def since(self, probe: str) -> float | None:
        with self._lock:
            return self._since.get(probe)
