"""Where a run's :class:`~monitor.result.Result` goes once the probe has returned it.

A sink has two methods: ``configure(config)`` when a config is adopted, ``observe(result)``
after every run. :class:`Sinks` is the one fan-out, built by :func:`default_sinks` for the
daemon, ``once``-like callers, the tests and the benchmarks alike, so that a sink added here
is measured wherever runs are: :mod:`~monitor.sinks.metrics` (``/metrics``),
:mod:`~monitor.sinks.history` (the status page's runs), :mod:`~monitor.sinks.log` (one event
per run). Sinks never change a result and never do I/O that could block the event loop.
"""

from __future__ import annotations

from typing import Protocol

from monitor.config import Config
from monitor.result import Result
from monitor.sinks.history import History
from monitor.sinks.log import RunLog
from monitor.sinks.metrics import Surfacer


class Sink(Protocol):
    def configure(self, config: Config) -> None: ...

    def observe(self, result: Result) -> None: ...


class Sinks:
    """The fan-out: every result to every sink, in order (metrics first: a scrape racing the
    run sees the new values as soon as possible)."""

    __slots__ = ("_all", "history", "log", "metrics")

    def __init__(self, metrics: Surfacer, history: History, log: RunLog,
                 *more: Sink) -> None:
        self.metrics = metrics
        self.history = history
        self.log = log
        self._all: tuple[Sink, ...] = (metrics, history, log, *more)

    def configure(self, config: Config) -> None:
        for sink in self._all:
            sink.configure(config)

    def observe(self, result: Result) -> None:
        for sink in self._all:
            sink.observe(result)


def default_sinks(location: str | None = None) -> Sinks:
    return Sinks(Surfacer(location=location), History(), RunLog())


__all__ = ["Sink", "Sinks", "default_sinks"]
