"""The status page in a real browser: Debian's headless Chromium against a daemon that has
one probe failing the way the incident did and others passing.

The screenshots land in tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import excuse_egress
from tests.support.servers import ROOT, DaemonProc, SimProc, need_tool
from tests.web.test_statuspage import serve_failing_and_passing, wait_runs

ARTIFACTS = ROOT / "tests" / "artifacts"
BROWSER_TIMEOUT = 60.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    """Debian's Chromium; under CI a missing browser fails the test (see need_tool)."""
    if shutil.which("chromium-browser") and not shutil.which("chromium"):
        return need_tool("chromium-browser", "apt-get install chromium")
    return need_tool("chromium", "apt-get install chromium, or `make system-deps`")


def browse(url: str, *args: str, size: str = "1280,900") -> str:
    """Run headless Chromium once on ``url`` in a ``size`` window; returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="synthmon-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               # no name resolves but loopback's: the page must need nothing from outside,
               # and Chromium's own background lookups go nowhere
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
               "--disable-features=DnsOverHttps,OptimizationHints,MediaRouter,Translate",
               "--no-pings", "--disable-domain-reliability",
               f"--user-data-dir={profile}", f"--window-size={size}", "--hide-scrollbars",
               *args, url]
        # Left: Chromium's IPv6 reachability probe (a UDP connect to a public address,
        # which sends nothing), once or twice a launch; the egress guard excuses a few only.
        with excuse_egress(4, "chromium"):
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helpers only
                proc.communicate()
                raise AssertionError(
                    f"chromium did not finish within {BROWSER_TIMEOUT}s") from None
        assert proc.returncode == 0, err[-3000:]
        return out


def check_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def test_status_page_in_headless_chromium(sim_proc: SimProc, tmp_path: Path,
                                          daemons: list[DaemonProc]) -> None:
    chromium()
    d = serve_failing_and_passing(sim_proc, tmp_path, daemons)
    wait_runs(d, 6)  # enough runs for a sparkline worth looking at

    dom = browse(d.url + "/", "--dump-dom")
    assert "1 of 3 probes failing" in dom
    assert 'data-probe="ws-golden-path" data-outcome="handshake_rejected"' in dom
    assert 'data-probe="health" data-outcome="success"' in dom
    assert 'data-probe="ws-alternate-path" data-outcome="success"' in dom
    assert "Failing now" in dom
    assert "the path is served by a plain HTTP route" in dom
    assert "<svg" in dom  # the sparklines

    probe_dom = browse(d.url + "/probe/ws-golden-path", "--dump-dom")
    assert "refused: HTTP 403" in probe_dom
    assert "websocket_ssot" in probe_dom  # the body of the diagnostic GET
    assert "Last " in probe_dom and "handshake_rejected" in probe_dom

    ARTIFACTS.mkdir(exist_ok=True)
    shots = {"statuspage.png": "/", "statuspage-probe.png": "/probe/ws-golden-path"}
    for name, path in shots.items():
        target = ARTIFACTS / name
        target.unlink(missing_ok=True)
        browse(d.url + path, f"--screenshot={target}")
        assert target.is_file(), f"chromium wrote no screenshot to {target}"
        assert check_png(target) == (1280, 900)
