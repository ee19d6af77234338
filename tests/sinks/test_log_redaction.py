"""The log's last line of defence: a secret put straight into a log event (not through a
probe's redacted evidence) is scrubbed by the redacting processor of monitor/runlog.py,
wherever in the event it sits, in both renderers."""

from __future__ import annotations

import base64
import io
import json

import pytest
import structlog

from monitor.limits import LOG_ITEMS, LOG_LINE_CHARS, LOG_VALUE_CHARS
from monitor.redact import Redactor
from monitor.sinks.log import configure_logging

SECRET = "log-Secret-7c6b5a4d3e2f1a0b"
FORMS = [SECRET, base64.b64encode(SECRET.encode()).decode(),
         base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")]


@pytest.fixture(autouse=True)
def _restore_structlog() -> object:
    saved = structlog.get_config()
    yield None
    structlog.configure(**saved)


def log_everywhere(json_lines: bool) -> str:
    stream = io.StringIO()
    configure_logging(Redactor([SECRET]), stream=stream, json=json_lines)
    log = structlog.get_logger("synthmon")
    b64 = FORMS[1]
    log.warning(f"message naming {SECRET}", detail=f"Authorization: Basic {b64}",
                errors=[f"probes.yaml:3: url: bad 'https://u:{SECRET}@h/'"],
                headers={"X-Api-Key": SECRET, SECRET: "as a key"},
                pair=("token", FORMS[2]), raw=SECRET.encode(), count=3, ok=True)
    try:
        raise RuntimeError(f"connect failed with password={SECRET}")
    except RuntimeError:
        log.exception("probe_crashed", probe="p")
    return stream.getvalue()


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_a_secret_placed_anywhere_in_an_event_is_redacted(json_lines: bool) -> None:
    out = log_everywhere(json_lines)
    for form in FORMS:
        assert form not in out, out
    assert out.count("<redacted>") == 8, out  # message, 5 fields (one a key), exception
    assert "probe_crashed" in out and "RuntimeError: connect failed with password=<redacted>" \
        in out  # the exception is kept, redacted
    if json_lines:
        first, second = (json.loads(line) for line in out.splitlines())
        assert first["count"] == 3 and first["ok"] is True  # other values untouched
        assert first["headers"] == {"X-Api-Key": "<redacted>", "<redacted>": "as a key"}
        assert first["pair"] == ["token", "<redacted>"]
        assert second["level"] == "error" and "Traceback" in second["exception"]


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "console"])
def test_every_line_is_bounded_and_shows_no_escape_sequence(json_lines: bool) -> None:
    """A value of any size (a detail that listed every event a flooding server sent was an
    847 MB line) is cut to LOG_VALUE_CHARS, a list or mapping to LOG_ITEMS; control
    characters are made visible, for the console renderer writes strings as they are."""
    stream = io.StringIO()
    configure_logging(Redactor([SECRET]), stream=stream, json=json_lines)
    log = structlog.get_logger("synthmon")
    log.warning("probe_run", detail="seen: " + ", ".join(f"t{i}" for i in range(500_000)),
                hint="\x1b[2J\x1b]0;pwned\x07\x9b31m" + SECRET,
                events=[f"e{i}" for i in range(100_000)],
                headers={f"X-{i}": "v" * 10_000 for i in range(1000)})
    out = stream.getvalue()
    assert len(out.splitlines()) == 1
    # The strings' share, and per item of the two containers some punctuation and a "…".
    assert len(out) < LOG_LINE_CHARS + 3 * LOG_ITEMS * 16 + 1024, len(out)
    for bad in ("\x1b", "\x07", "\x9b", SECRET):
        assert bad not in out
    if json_lines:
        line = json.loads(out)
        assert len(line["detail"]) == LOG_VALUE_CHARS + 1 and line["detail"].endswith("…")
        assert line["hint"].startswith("␛[2J␛]0;pwned␇\ufffd31m<redacted>")
        assert len(line["events"]) == LOG_ITEMS + 1
        assert line["events"][-1] == f"… {100_000 - LOG_ITEMS} more"
        assert line["headers"]["…"] == f"{1000 - LOG_ITEMS} more"
    else:
        assert "␛[2J" in out and "<redacted>" in out
