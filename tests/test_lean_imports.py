"""monitor.lean_imports: the daemon imports structlog without rich, and nothing it prints
changes for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.hostile import make_cert
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


def test_aiohttp_default_contexts_load_the_ca_certificates_at_their_first_handshake(
        tmp_path: Path) -> None:
    """aiohttp's two default client contexts are made without the system's CA certificates
    (~2 MiB, issue 24) and load them before their first handshake: a request that names no
    context of its own verifies against them as ever (SSL_CERT_FILE names the only CA here);
    the unverified context, never used, loads nothing. Fails when an aiohttp release stops
    making them at import (the hook would be moot) or the hook stops deferring."""
    cert = make_cert(tmp_path, ["127.0.0.1"])
    done = subprocess.run([sys.executable, "-c", f"""
import asyncio, ssl, sys
import monitor
assert "aiohttp" not in sys.modules  # the hook waits for the first import of aiohttp
import monitor.cli.run  # the daemon's, which imports it
import aiohttp, aiohttp.connector as connector
from aiohttp import web
from pathlib import Path
from tests.support.hostile import Cert, server_context

verified, unverified = connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED
assert "set_default_verify_paths" not in ssl.SSLContext.__dict__  # the hook is undone
assert aiohttp.__spec__.loader is aiohttp.__loader__ and "Deferring" not in repr(aiohttp.__loader__)
stats = ssl.SSLContext.cert_store_stats  # what the context holds, without loading
assert stats(verified)["x509_ca"] == stats(unverified)["x509_ca"] == 0
assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname

async def main():
    app = web.Application()
    app.router.add_get("/", lambda _: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    cert = Cert(Path({str(cert.cert_file)!r}), Path({str(cert.key_file)!r}), 0.0)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(cert))
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{{port}}/") as resp:
            print(resp.status, await resp.text())
    await runner.cleanup()

asyncio.run(main())
print(stats(verified)["x509_ca"], stats(unverified)["x509_ca"])
"""], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SSL_CERT_FILE": str(cert.cert_file)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "ok", "1", "0"], done.stdout
