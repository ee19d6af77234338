"""The log's last line of defence: a secret put straight into a log event (not through a
probe's redacted evidence) is scrubbed by the redacting processor of monitor/runlog.py,
wherever in the event it sits, in both renderers."""

from __future__ import annotations

import base64
import io
import json

import pytest
import structlog

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
