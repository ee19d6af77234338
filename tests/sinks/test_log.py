"""The probe_run event: the line structlog writes for it, with the run's logger assembled
once and again whenever structlog's configuration changes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from monitor.outcomes import Outcome
from monitor.redact import Redactor
from monitor.result import Evidence, Result
from monitor.sinks import log as log_module
from monitor.sinks.log import RunLog, _encode, configure_logging, log_result


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield None
    structlog.configure(**saved)


def result(**kw: object) -> Result:
    base: dict[str, object] = dict(
        probe="p", type="http", target="http://t/", outcome=Outcome.UNEXPECTED_STATUS,
        started_at=1.0, duration_seconds=0.0123, status_code=503, attempt=2, final=False,
        trace_id="a" * 32, span_id="b" * 16, variant=None,
        evidence=Evidence(detail="HTTP 503", hint="try later"))
    base.update(kw)
    return Result(**base)  # type: ignore[arg-type]


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    for event in events:
        assert event.pop("timestamp")  # the one field that differs between two writes
    return events


def test_the_sink_writes_what_structlog_writes_for_the_event() -> None:
    stream = io.StringIO()
    configure_logging(Redactor(["secret-value-0123"]), stream=stream, json=True)
    sink = RunLog()
    for r in (result(), result(outcome=Outcome.SUCCESS, status_code=200, attempt=1,
                               final=True, variant=None, evidence=Evidence(detail="ok"))):
        sink.observe(r)
        log_result(r)  # through structlog.get_logger, assembled for the event
    first, again, ok, ok_again = (json.dumps(e) for e in _lines(stream))
    assert first == again and ok == ok_again
    assert json.loads(first)["level"] == "warning" and json.loads(ok)["level"] == "info"


def test_the_sink_follows_a_new_configuration_and_a_restored_one() -> None:
    sink = RunLog()
    a, b = io.StringIO(), io.StringIO()
    configure_logging(Redactor(), stream=a, json=True)
    saved = structlog.get_config()
    sink.observe(result())
    configure_logging(Redactor(), stream=b, json=True)
    sink.observe(result(probe="q"))
    structlog.configure(**saved)  # as the tests restore it
    sink.observe(result(probe="r"))
    assert [e["probe"] for e in _lines(a)] == ["p", "r"]
    assert [e["probe"] for e in _lines(b)] == ["q"]
    with structlog.testing.capture_logs() as captured:
        sink.observe(result(probe="s"))
    assert [e["probe"] for e in captured] == ["s"]


@pytest.mark.parametrize("obj", [
    {"a": 1, "b": [1.5, None, True], "c": "é\n\"", "d": {"x": float("inf")}},
    {"odd": object(), "bytes": b"\x00"},
    {"nan": float("nan"), "-inf": float("-inf"), "t": ("x", 2)},
    {3: "int keys", 1: None, 2.5: "a float key"},
    "a plain string \u2028 é",
    [1, "two", {"three": 3.0}],
])
@pytest.mark.parametrize("accelerated", [True, False])
def test_the_kept_encoder_encodes_as_json_dumps(obj: object, accelerated: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if not accelerated:
        monkeypatch.setattr(log_module, "c_make_encoder", None)
    monkeypatch.setattr(log_module, "_ENCODERS", {})

    def default(o: object) -> str:
        return repr(o)

    assert _encode(obj, default=default) == json.dumps(obj, default=default)
    assert _encode(obj, default=default) == json.dumps(obj, default=default)  # kept one
    assert _encode(obj, default=default, sort_keys=True) == json.dumps(
        obj, default=default, sort_keys=True)


def test_the_kept_encoder_still_refuses_a_circular_structure() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        json.dumps({"a": loop}, default=repr)
    with pytest.raises(ValueError, match="Circular reference"):
        _encode({"a": loop}, default=repr)
    assert _encode({"a": [1]}, default=repr) == '{"a": [1]}'  # and works after


def test_the_timestamp_is_what_structlogs_iso_utc_stamper_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The log's own stamper writes what TimeStamper(fmt="iso", utc=True) wrote: the same
    string for the same instant, with and without microseconds."""
    import datetime as dt

    from monitor.sinks import log as sink

    at = [0.0]

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls.fromtimestamp(at[0], tz)

    for instant in (dt.datetime(2026, 12, 7, 10, 13, 22, 123456, tzinfo=dt.UTC),
                    dt.datetime(2026, 12, 7, 10, 13, 22, tzinfo=dt.UTC),
                    dt.datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)):
        at[0] = instant.timestamp()
        monkeypatch.setattr(dt, "datetime", Frozen)  # what structlog's stamper calls
        monkeypatch.setattr(sink, "datetime", Frozen)  # and ours
        theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})
        ours = sink._timestamp(None, "info", {})
        monkeypatch.undo()
        assert ours == theirs
        assert ours["timestamp"].startswith(instant.strftime("%Y-%m-%dT%H:%M:%S"))
