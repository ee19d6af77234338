"""The structured-log sink: one event per probe run, plus daemon events.

JSON lines when stderr is not a terminal (for log shippers), a readable console otherwise.
A final processor passes every string through the redactor, so a secret that slipped into an
event by accident is still never written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from monitor.config import Config
from monitor.redact import Redactor
from monitor.result import Result


def _redacting(redactor: Redactor) -> structlog.types.Processor:
    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = redactor.redact(value)
        return event

    return processor


def configure_logging(redactor: Redactor, stream: TextIO | None = None,
                      json: bool | None = None, level: int = logging.INFO) -> None:
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redacting(redactor),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


class RunLog:
    """The log as a sink: one ``probe_run`` event per run."""

    def configure(self, config: Config) -> None:
        pass  # nothing in the event depends on the config

    def observe(self, result: Result) -> None:
        log_result(result)


def log_result(result: Result) -> None:
    ev = result.evidence
    fields: dict[str, Any] = {
        "probe": result.probe,
        "type": result.type,
        "target": result.target,
        "outcome": result.outcome.value,
        "duration_ms": round(result.duration_seconds * 1000, 1),
    }
    if result.status_code is not None:
        fields["status_code"] = result.status_code
    if result.close_code is not None:
        fields["close_code"] = result.close_code
    if ev.step is not None:
        fields["step"] = ev.step_name or ev.step
    if ev.detail:
        fields["detail"] = ev.detail
    if result.attempt > 1 or not result.final:
        fields["attempt"] = result.attempt
        fields["final"] = result.final  # false: a retry follows, the failure is not exported
    log = structlog.get_logger("synthmon")
    if result.success:
        log.info("probe_run", **fields)
    else:
        log.warning("probe_run", **fields)
