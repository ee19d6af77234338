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
import math
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json import JSONEncoder, dumps
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from time import time_ns
from typing import Any, NamedTuple, TextIO

import structlog

from monitor.config import Config
from monitor.keep import Keeper, has_control
from monitor.limits import LOG_ITEMS, LOG_LINE_CHARS, LOG_TRACEBACK_CHARS, LOG_VALUE_CHARS
from monitor.outcomes import Outcome
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


class _Clock:
    """What :func:`_timestamp` writes for now, from the clock ``datetime.now`` reads
    (``time_ns``, microseconds floored as it floors them), the date and time of day made
    once a second: ``datetime.now(UTC).isoformat()`` was a third of a run's line."""

    __slots__ = ("_dot", "_plain", "_start")

    def __init__(self) -> None:
        self._start = 0  # the second of _plain, in unix nanoseconds (0: none yet)
        self._plain = ""  # "YYYY-MM-DDTHH:MM:SSZ", for a whole second
        self._dot = ""  # "YYYY-MM-DDTHH:MM:SS.", for the microseconds after it

    def stamp(self) -> str:
        now = time_ns()
        ns = now - self._start
        if not 0 <= ns < 1_000_000_000:
            second = now // 1_000_000_000
            text = datetime.fromtimestamp(second, UTC).isoformat()[:-len("+00:00")]
            self._start, self._plain, self._dot = second * 1_000_000_000, text + "Z", text + "."
            ns = now - self._start
        micro = ns // 1000
        # isoformat() writes no microseconds when there are none.
        return f"{self._dot}{str(micro + 1_000_000)[1:]}Z" if micro else self._plain


@dataclass(frozen=True, slots=True, eq=False)
class _Made:
    """What :func:`configure_logging` gave structlog for JSON lines: while structlog's
    configuration is this one, the run log writes a ``probe_run`` line itself
    (:class:`_RunLines`), to structlog's output logger, where and when the chain would."""

    chain: list[structlog.types.Processor]  # the very list structlog was given
    processors: list[structlog.types.Processor]  # a copy of what it held then
    wrapper_class: type[Any]
    logger_factory: Callable[..., Any]
    level: int
    redactor: Redactor

    def current(self, config: Mapping[str, Any]) -> bool:
        """Whether structlog's configuration ``config`` is still this one (structlog's
        ``capture_logs`` changes a configured chain in place)."""
        return (config["processors"] is self.chain and self.chain == self.processors
                and config["wrapper_class"] is self.wrapper_class
                and config["logger_factory"] is self.logger_factory)


# The JSON configuration configure_logging made last (None: the console's, or none).
_made: _Made | None = None


def configure_logging(redactor: Redactor, stream: TextIO | None = None,
                      json: bool | None = None, level: int = logging.INFO) -> None:
    global _made
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_encode) if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    processors: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        _timestamp,
        # a traceback as text before the redactor: an exception's message may hold one
        structlog.processors.format_exc_info,
        _redacting(redactor),
        renderer,
    ]
    wrapper_class = structlog.make_filtering_bound_logger(level)
    # What PrintLogger writes (the line, then a newline, flushed), in one write call.
    logger_factory = structlog.WriteLoggerFactory(stream)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    _made = (_Made(processors, list(processors), wrapper_class, logger_factory, level,
                   redactor) if json else None)


class RunLog:
    """The log as a sink: one ``probe_run`` event per run."""

    def __init__(self) -> None:
        self._logger: Any = None
        self._made_for: tuple[Any, ...] = ()
        self._lines: _RunLines | None = None

    def configure(self, config: Config) -> None:
        # Nothing in the event depends on the config; the remembered heads of the run names
        # it no longer has are let go.
        if self._lines is not None:
            self._lines.forget()

    def observe(self, result: Result) -> None:
        config = structlog.get_config()
        lines = self._lines
        if lines is None or not (  # lines.made.current(config), inlined: every run asks
                config["processors"] is lines.chain and lines.chain == lines.made.processors
                and config["wrapper_class"] is lines.made.wrapper_class
                and config["logger_factory"] is lines.made.logger_factory):
            # While structlog's configuration is the JSON one of configure_logging, the
            # run's line is made by _RunLines (its memo kept while the configuration is).
            made = _made
            lines = self._lines = (
                _RunLines(made) if made is not None and made.current(config) else None)
        if lines is None or not lines.write(result):
            log_result(result, self._bound(config))

    def _bound(self, config: Mapping[str, Any]) -> Any:
        """structlog's logger as ``get_logger`` would assemble it for this event, assembled
        again only when structlog's configuration changed: assembling one (a new bound
        logger and output logger for every event, as structlog does unless told to cache,
        which would outlive a reconfiguration) was a tenth of what the log sink cost."""
        made_for = self._made_for
        if (not made_for or config["processors"] is not made_for[0]
                or config["logger_factory"] is not made_for[1]
                or config["wrapper_class"] is not made_for[2]
                or config["context_class"] is not made_for[3]):
            self._logger = structlog.get_logger("synthmon").bind()
            self._made_for = (config["processors"], config["logger_factory"],
                              config["wrapper_class"], config["context_class"])
        return self._logger


# The lines' heads remembered (_RunLines): more than this many runs' names and the memo
# starts again (a config holds every probe's; a reload lets go of the removed ones').
RUN_HEADS = 100_000
_EVENT = "probe_run"
_LEVEL_CHARS = (len("info"), len("warning"))
_SUCCESS = Outcome.SUCCESS
# What the JSON encoder writes for a number whose repr is not its JSON.
_NOT_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


class _Head(NamedTuple):
    """What a probe_run line of one run name starts with, for one redaction pattern."""

    type: str
    target: str
    text: str  # '{"probe": ..., "type": ..., "target": ..., "outcome": '
    variant: str  # ', "variant": ...' or ''
    chars: int  # of the line's strings among these and the event's name; -1: not clean


class _RunLines:
    """A ``probe_run`` line made from the Result's fields directly: byte for byte what the
    chain of :func:`configure_logging` writes for the event :func:`log_result` logs, when
    that chain leaves the event as it is (the redacting step's commonest case: strings
    without a control character or a secret, all together within LOG_VALUE_CHARS). Any
    other run is logged through the chain (:meth:`write` says so).

    What repeats from run to run is encoded once: a run name's head (name, type, target,
    variant), the outcomes, the levels, each only when it is clean (no control character,
    no secret), all for the redactor's current pattern (a new secret or token makes a new
    one, and everything is checked again)."""

    def __init__(self, made: _Made) -> None:
        self.made = made
        self.chain = made.chain
        self.redactor = made.redactor
        # structlog's output logger, as get_logger's would be, and the levels that pass
        # its filter (make_filtering_bound_logger(level)).
        self._out = made.logger_factory("synthmon")
        self._info = made.level <= logging.INFO
        self._warning = made.level <= logging.WARNING
        self._clock = _Clock()
        self._pattern: re.Pattern[str] | None = None
        self._heads: dict[str | tuple[str, str], _Head] = {}
        self._outcomes: dict[str, tuple[str, int] | None] = {}
        self._tails: tuple[str | None, str | None] = (None, None)
        self._renew(self.redactor.pattern)

    def forget(self) -> None:
        self._heads = {}

    def write(self, result: Result) -> bool:
        """Write the run's line (or drop it, as the level filter would): False when it must
        go through the chain instead."""
        success = result.outcome is _SUCCESS
        if not (self._info if success else self._warning):
            return True
        line = self.line(result, 0 if success else 1)
        if line is None:
            return False
        (self._out.info if success else self._out.warning)(line)
        return True

    def _clean(self, text: str) -> bool:
        pattern = self._pattern
        return not has_control(text) and (pattern is None or pattern.search(text) is None)

    def _renew(self, pattern: re.Pattern[str] | None) -> None:
        self._pattern = pattern
        self._heads = {}
        self._outcomes = {o.value: (encode_basestring_ascii(o.value), len(o.value))
                          if self._clean(o.value) else None for o in Outcome}
        info, warning = (
            f', "event": {encode_basestring_ascii(_EVENT)}, "level": '
            f'{encode_basestring_ascii(level)}, "timestamp": '
            if self._clean(level) and self._clean(_EVENT) else None
            for level in ("info", "warning"))
        self._tails = (info, warning)

    def _head(self, result: Result) -> _Head:
        key, type_, target, variant = result.key, result.type, result.target, result.variant
        texts = (key, type_, target) if variant is None else (key, type_, target, variant)
        if any(type(t) is not str or not self._clean(t) for t in texts):
            return _Head(type_, target, "", "", -1)
        return _Head(type_, target,
                     f'{{"probe": {encode_basestring_ascii(key)}, "type": '
                     f'{encode_basestring_ascii(type_)}, "target": '
                     f'{encode_basestring_ascii(target)}, "outcome": ',
                     "" if variant is None else
                     f', "variant": {encode_basestring_ascii(variant)}',
                     sum(map(len, texts)) + len(_EVENT))

    def line(self, result: Result, level: int) -> str | None:
        """The run's line at ``level`` (0: info, 1: warning), or None when the chain must
        make it."""
        pattern = self.redactor.pattern
        if pattern is not self._pattern:
            self._renew(pattern)
        # A probe's name, or (name, variant) for a variant's: no tuple made for most runs.
        name = result.probe if result.variant is None else (result.probe, result.variant)
        head = self._heads.get(name)
        if head is None or head.target != result.target or head.type != result.type:
            if len(self._heads) >= RUN_HEADS:
                self._heads = {}
            head = self._heads[name] = self._head(result)
        outcome = self._outcomes.get(result.outcome._value_)
        tail = self._tails[level]
        duration = _duration_ms(result.duration_seconds)
        if head.chars < 0 or outcome is None or tail is None or duration is None:
            return None
        ev = result.evidence
        line = f'{head.text}{outcome[0]}, "duration_ms": {duration}{head.variant}'
        # What the redacting step checks, besides what the head, outcome and level hold:
        # the strings of the line, made of what the run saw (the timestamp is this module's).
        texts = ""
        code = result.status_code
        if code is not None:
            if type(code) is not int:
                return None
            line += f', "status_code": {code}'
        code = result.close_code
        if code is not None:
            if type(code) is not int:
                return None
            line += f', "close_code": {code}'
        if ev.step is not None:
            step = ev.step_name or ev.step
            if type(step) is str:
                texts += step
                line += f', "step": {encode_basestring_ascii(step)}'
            elif type(step) is int:
                line += f', "step": {step}'
            else:
                return None
        detail = ev.detail
        if detail:
            if type(detail) is not str:
                return None
            texts += detail
            line += f', "detail": {encode_basestring_ascii(detail)}'
        if result.attempt > 1 or not result.final:
            attempt, final = result.attempt, result.final
            if type(attempt) is not int or type(final) is not bool:
                return None
            line += f', "attempt": {attempt}, "final": {"true" if final else "false"}'
        trace, span = result.trace_id, result.span_id
        if trace is not None:
            if type(trace) is not str or type(span) is not str:
                return None
            texts += trace + span
            line += (f', "trace_id": {encode_basestring_ascii(trace)}, '
                     f'"span_id": {encode_basestring_ascii(span)}')
        hint = ev.hint
        if hint:
            if type(hint) is not str:
                return None
            texts += hint
            line += f', "hint": {encode_basestring_ascii(hint)}'
        stamp = self._clock.stamp()
        # The redacting step's commonest case, decided as it decides it (see _redacting):
        # the line's strings within LOG_VALUE_CHARS together, none with a control character
        # or a secret (the head's, the outcome's and the level's checked when encoded).
        if (len(texts) + len(stamp) + head.chars + outcome[1] + _LEVEL_CHARS[level]
                > LOG_VALUE_CHARS or (not texts.isprintable() and has_control(texts))
                or (pattern is not None and pattern.search(texts + stamp) is not None)):
            return None
        return f'{line}{tail}"{stamp}"}}'  # the timestamp's JSON: digits and -:.TZ, quoted


def _duration_ms(seconds: float) -> str | None:
    """``round(seconds * 1000, 1)`` as the JSON encoder writes it (None: not a float, or
    beyond where the one-decimal string below is that): formatting the product to one
    decimal rounds it as ``round`` does (both correctly rounded, half to even, from the
    same double), and below _EXACT_MS, where floats are far closer together than 0.05,
    that string is the shortest that reads back as the rounded float: its repr. One
    rounding instead of round's two and repr's one."""
    if type(seconds) is not float:
        return None
    ms = seconds * 1000
    if -_EXACT_MS < ms < _EXACT_MS:
        return f"{ms:.1f}"
    rounded = round(ms, 1)
    return _NOT_FINITE.get(rounded) or ("NaN" if rounded != rounded else float.__repr__(rounded))


# Below this (in ms, 2**40: 35 years), one decimal is always more than the float's spacing.
_EXACT_MS = float(2**40)


def run_fields(result: Result) -> dict[str, Any]:
    """The ``probe_run`` event's fields for a run, in the order of its line."""
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
    return fields


def log_result(result: Result, log: Any = None) -> None:
    """The run's ``probe_run`` event, through ``log`` (structlog's logger when None) and
    whatever chain it runs."""
    if log is None:
        log = structlog.get_logger("synthmon")
    if result.success:
        log.info(_EVENT, **run_fields(result))
    else:
        log.warning(_EVENT, **run_fields(result))
