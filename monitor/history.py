"""The run-history sink: the last N results per probe, for the status page and the API."""

from __future__ import annotations

import threading
from collections import deque

from monitor.config import Config
from monitor.result import Result

DEFAULT_DEPTH = 100


class History:
    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        self.depth = depth
        self._lock = threading.Lock()
        self._runs: dict[str, deque[Result]] = {}
        self._since: dict[str, float] = {}  # start of the current streak of the last outcome
        self._order: list[str] = []

    def configure(self, config: Config) -> None:
        with self._lock:
            self._order = [p.name for p in config.probes]
            self._runs = {n: self._runs.get(n, deque(maxlen=self.depth)) for n in self._order}
            self._since = {n: t for n, t in self._since.items() if n in self._runs}

    def observe(self, result: Result) -> None:
        with self._lock:
            runs = self._runs.get(result.probe)
            if runs is None:
                return
            if not runs or runs[-1].outcome is not result.outcome:
                self._since[result.probe] = result.started_at
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
