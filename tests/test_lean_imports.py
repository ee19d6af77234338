"""monitor.lean_imports: the daemon imports structlog without rich, and nothing it prints
changes for it."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import ROOT

# A console log line with an exception, as the daemon writes it when not logging JSON.
RENDER = """
import io, re, sys
{first}
from monitor.redact import Redactor
from monitor.sinks.log import configure_logging
import structlog
out = io.StringIO()
configure_logging(Redactor(["s3cret"]), stream=out, json=False)
try:
    raise ValueError("boom with s3cret")
except ValueError:
    structlog.get_logger("synthmon").error("probe_failed", probe="a", exc_info=True)
structlog.get_logger("synthmon").warning("reload_failed", errors=["x:1: bad"])
print("RICH" if structlog.dev.rich is not None else "PLAIN")
sys.stdout.write(re.sub(r"\\d{{4}}-\\d\\d-\\d\\dT[0-9:.]+Z", "T", out.getvalue()))
"""


def _run(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_daemon_imports_structlog_without_rich_and_once_still_has_rich() -> None:
    out = _run("""
import sys
import monitor.cli.run, monitor.daemon, monitor.web.server, monitor.sinks
import structlog
assert "structlog" in sys.modules and "structlog.dev" in sys.modules
print(sorted(m for m in sys.modules if m.split(".")[0] in ("rich", "pygments")))
assert "rich" not in sys.modules  # the hook is undone: rich imports as ever
import monitor.cli.once
import rich.console
print("rich" in sys.modules, structlog.dev.rich is None)
""")
    assert out.splitlines() == ["[]", "True True"], out


def test_console_log_lines_are_the_same_with_structlog_imported_with_rich() -> None:
    plain = _run(RENDER.format(first="import monitor"))
    rich = _run(RENDER.format(first="import structlog  # before monitor: structlog has rich"))
    assert plain.splitlines()[0] == "PLAIN" and rich.splitlines()[0] == "RICH"
    assert "ValueError: boom with" in plain and "s3cret" not in plain
    assert "Traceback (most recent call last)" in plain and "reload_failed" in plain
    assert plain.splitlines()[1:] == rich.splitlines()[1:]
