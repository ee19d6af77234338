"""Debian's headless Chromium, run once per page: for the tests that look at the daemon's
pages in a real browser."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

from tests.conftest import excuse_egress
from tests.support.servers import need_tool

BROWSER_TIMEOUT = 60.0


def chromium() -> str:
    """Debian's Chromium; under CI a missing browser fails the test (see need_tool)."""
    if shutil.which("chromium-browser") and not shutil.which("chromium"):
        return need_tool("chromium-browser", "apt-get install chromium")
    return need_tool("chromium", "apt-get install chromium, or `make system-deps`")


# No name resolves but loopback's: the page must need nothing from outside, and Chromium's
# own background lookups go nowhere.
LOOPBACK_ONLY = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def browse(url: str, *args: str, size: str = "1280,900", resolve: str = "") -> str:
    """Run headless Chromium once on ``url`` in a ``size`` window; returns its stdout.
    ``resolve``: host resolver rules before the loopback-only ones (``MAP name 127.0.0.1``,
    ``EXCLUDE 127.0.0.2``)."""
    with tempfile.TemporaryDirectory(prefix="synthmon-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               "--host-resolver-rules=" + ", ".join(r for r in (resolve, LOOPBACK_ONLY) if r),
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
