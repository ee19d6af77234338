"""Where a run's :class:`~monitor.result.Result` goes once the probe has returned it.

A sink has two methods: ``configure(config)`` when a config is adopted, ``observe(result)``
after every run. :class:`Sinks` is the one fan-out, built by :func:`default_sinks` for the
daemon, ``once``-like callers, the tests and the benchmarks alike, so that a sink added here
is measured wherever runs are: :mod:`~monitor.sinks.metrics` (``/metrics``),
:mod:`~monitor.sinks.history` (the status page's runs), :mod:`~monitor.sinks.log` (one event
per run), and :mod:`~monitor.sinks.otel` (spans over OTLP) when ``OTEL_EXPORTER_OTLP_*``
is set. Sinks never change a result and never do I/O that could block the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import structlog

from monitor.config import Config
from monitor.result import Result
from monitor.sinks.history import History
from monitor.sinks.log import RunLog
from monitor.sinks.metrics import Surfacer


class Sink(Protocol):
    def configure(self, config: Config) -> None: ...

    def observe(self, result: Result) -> None: ...


@runtime_checkable
class Closing(Protocol):
    """A sink holding work that must be finished (or given up) when the daemon stops."""

    def close(self, timeout: float = ...) -> None: ...


class Sinks:
    """The fan-out: every result to every sink, in order (metrics first: a scrape racing the
    run sees the new values as soon as possible)."""

    __slots__ = ("_all", "_more", "history", "log", "metrics")

    def __init__(self, metrics: Surfacer, history: History, log: RunLog,
                 *more: Sink) -> None:
        self.metrics = metrics
        self.history = history
        self.log = log
        self._all: tuple[Sink, ...] = (metrics, history, log, *more)
        self._more = more

    def configure(self, config: Config) -> None:
        for sink in self._all:
            sink.configure(config)

    def observe(self, result: Result) -> None:
        # The three every daemon has, called without a loop (this runs for every run).
        self.metrics.observe(result)
        self.history.observe(result)
        self.log.observe(result)
        for sink in self._more:
            sink.observe(result)

    def close(self, timeout: float = 2.0) -> None:
        """Finish the sinks' pending work within ``timeout`` each (blocking: call it in a
        thread from the event loop)."""
        for sink in self._all:
            if isinstance(sink, Closing):
                sink.close(timeout)


def default_sinks(location: str | None = None,
                  environ: Mapping[str, str] | None = None,
                  shard: tuple[int, int] | None = None,
                  external_url: str | None = None) -> Sinks:
    surfacer = Surfacer(location=location, shard=shard, external_url=external_url)
    more: list[Sink] = []
    environ = os.environ if environ is None else environ
    if any(environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT",
                                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        try:
            from monitor.sinks import otel
        except ImportError as exc:
            structlog.get_logger("synthmon").warning(
                "otlp_unavailable", detail="OTEL_EXPORTER_OTLP_* is set but the OpenTelemetry "
                f"SDK is not installed (pip install 'synthmon[otel]'): no spans ({exc.name})")
        else:
            spans = otel.from_env(environ, location)
            if spans is not None:
                surfacer.otlp_stats = spans.stats
                more.append(spans)
    return Sinks(surfacer, History(), RunLog(), *more)


__all__ = ["Closing", "Sink", "Sinks", "default_sinks"]
