"""The structured-log sink: one event per probe run, plus daemon events.

JSON lines when stderr is not a terminal (for log shippers), a readable console otherwise.
A final processor passes every string through the redactor, so a secret that slipped into an
event by accident is still never written, makes its control characters visible (the console
renderer writes strings as they are, to a terminal) and cuts it to LOG_VALUE_CHARS, all of a
line's strings to LOG_LINE_CHARS, each list or mapping to LOG_ITEMS (monitor.limits): no log
line outgrows what a log shipper takes.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from json import JSONEncoder, dumps
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TextIO

import structlog

from monitor.config import Config
from monitor.keep import Keeper, has_control
from monitor.limits import LOG_ITEMS, LOG_LINE_CHARS, LOG_TRACEBACK_CHARS, LOG_VALUE_CHARS
from monitor.redact import Redactor
from monitor.result import Result


class _Line:
    """One log event made fit for a line: its string values share LOG_LINE_CHARS, each at
    most LOG_VALUE_CHARS; its traceback has LOG_TRACEBACK_CHARS of its own."""

    __slots__ = ("keep", "left")

    def __init__(self, keep: Keeper) -> None:
        self.keep = keep
        self.left = LOG_LINE_CHARS

    def text(self, value: str) -> str:
        shown = self.keep.text(value, max(0, min(LOG_VALUE_CHARS, self.left))) or ""
        self.left -= len(shown)
        return shown

    def value(self, value: Any) -> Any:
        """Strings kept (redacted, printable, cut), containers walked (LOG_ITEMS of each,
        then how many more), anything else (bytes, exceptions, objects) as the kept text of
        its repr, which is how the renderers would have shown it."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            items = list(itertools.islice(value.items(), LOG_ITEMS))
            out = {self.value(k): self.value(v) for k, v in items}
            if len(value) > LOG_ITEMS:
                out["…"] = f"{len(value) - LOG_ITEMS} more"
            return out
        if isinstance(value, list | tuple | set | frozenset):
            kept = [self.value(v) for v in itertools.islice(value, LOG_ITEMS)]
            if len(value) > LOG_ITEMS:
                kept.append(f"… {len(value) - LOG_ITEMS} more")
            return kept
        return self.text(repr(value))


# What a log value is kept as, as it is.
_PLAIN = frozenset({type(None), bool, int, float})
_AS_IS = _PLAIN | {str}  # when no secret is in them


def _redacting(redactor: Redactor) -> structlog.types.Processor:
    keep = Keeper(redactor)
    redact = redactor.redact
    may_hold_secret = redactor.may_hold_secret

    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        # The commonest case first: this runs for every probe run's event, a dozen short
        # fields, strings without a control character, under LOG_VALUE_CHARS all together
        # (so each within its bound and the line within its own): one check for them all,
        # then each only redacted, and only when a secret is in one of them (a secret in
        # none of them is in none of their joined text; one found across two of them
        # only costs the redaction of each).
        # A line of strings and plain values only, without a secret, is left as it is.
        values = event.values()
        texts = "".join([v for v in values if type(v) is str])
        if len(texts) <= LOG_VALUE_CHARS and not has_control(texts) \
                and "exception" not in event:
            secret = may_hold_secret(texts)
            if not secret and not [v for v in values if type(v) not in _AS_IS]:
                return event
            rest: _Line | None = None  # for a list or mapping: rare
            for key, value in event.items():
                kind = type(value)
                if kind is str:
                    if secret:
                        event[key] = redact(value)
                elif kind not in _PLAIN:
                    rest = rest or _Line(keep)
                    event[key] = rest.value(value)
            return event
        line = _Line(keep)
        for key, value in event.items():
            kind = type(value)
            if kind is str:
                event[key] = (keep.words(value, LOG_TRACEBACK_CHARS) if key == "exception"
                              else line.text(value))
            elif kind not in _PLAIN:
                event[key] = line.value(value)
        return event

    return processor


_ENCODERS: dict[Any, Callable[[Any], str]] = {}


def _encoder(default: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """What ``JSONEncoder(default=default).encode`` does, calling the C encoder it makes
    directly: ``encode`` and ``iterencode`` around it were a third of a line's encoding."""
    make = c_make_encoder
    if make is None:  # a Python without the _json accelerator
        return JSONEncoder(default=default).encode

    def encode(obj: Any) -> str:
        if isinstance(obj, str):
            return encode_basestring_ascii(obj)
        # As JSONEncoder's defaults: a new circular-reference check each time, ASCII only,
        # ": " and ", ", keys unsorted and never skipped, NaN and Infinity allowed.
        return "".join(make({}, default, encode_basestring_ascii, None, ": ", ", ", False,
                            False, True)(obj, 0))

    return encode


def _encode(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, **kw)`` (what JSONRenderer calls, with its ``default=`` only), with
    one encoder kept for it instead of a new one made for every event."""
    default = kw.pop("default", None)
    if kw:
        return dumps(obj, default=default, **kw)
    encoder = _ENCODERS.get(default)
    if encoder is None:
        encoder = _ENCODERS[default] = _encoder(default)
    return encoder(obj)


def _timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """What ``structlog.processors.TimeStamper(fmt="iso", utc=True)`` adds, in one call
    rather than the four its layers make for every event."""
    event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return event


def configure_logging(redactor: Redactor, stream: TextIO | None = None,
                      json: bool | None = None, level: int = logging.INFO) -> None:
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_encode) if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _timestamp,
            # a traceback as text before the redactor: an exception's message may hold one
            structlog.processors.format_exc_info,
            _redacting(redactor),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


class RunLog:
    """The log as a sink: one ``probe_run`` event per run."""

    def __init__(self) -> None:
        self._logger: Any = None
        self._made_for: tuple[Any, ...] = ()

    def configure(self, config: Config) -> None:
        pass  # nothing in the event depends on the config

    def observe(self, result: Result) -> None:
        log_result(result, self._bound())

    def _bound(self) -> Any:
        """structlog's logger as ``get_logger`` would assemble it for this event, assembled
        again only when structlog's configuration changed: assembling one (a new bound
        logger and output logger for every event, as structlog does unless told to cache,
        which would outlive a reconfiguration) was a tenth of what the log sink costs."""
        config = structlog.get_config()
        made_for = self._made_for
        if (not made_for or config["processors"] is not made_for[0]
                or config["logger_factory"] is not made_for[1]
                or config["wrapper_class"] is not made_for[2]
                or config["context_class"] is not made_for[3]):
            self._logger = structlog.get_logger("synthmon").bind()
            self._made_for = (config["processors"], config["logger_factory"],
                              config["wrapper_class"], config["context_class"])
        return self._logger


def log_result(result: Result, log: Any = None) -> None:
    ev = result.evidence
    fields: dict[str, Any] = {
        "probe": result.key,  # NAME@VARIANT on a variant, as in every output
        "type": result.type,
        "target": result.target,
        "outcome": result.outcome.value,
        "duration_ms": round(result.duration_seconds * 1000, 1),
    }
    if result.variant is not None:
        fields["variant"] = result.variant
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
    if result.trace_id is not None:
        # What the target saw in traceparent: search its logs for this to find the run.
        fields["trace_id"] = result.trace_id
        fields["span_id"] = result.span_id
    if ev.hint:
        fields["hint"] = ev.hint
    if log is None:
        log = structlog.get_logger("synthmon")
    if result.success:
        log.info("probe_run", **fields)
    else:
        log.warning("probe_run", **fields)
