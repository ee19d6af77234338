"""The status page in a real browser: Debian's headless Chromium against a daemon that has
one probe failing the way the incident did and others passing.

The screenshots land in tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tests.support.browser import BROWSER_TIMEOUT, browse, chromium
from tests.support.servers import ROOT, DaemonProc, SimProc
from tests.web.test_statuspage import serve_failing_and_passing, wait_runs

ARTIFACTS = ROOT / "tests" / "artifacts"
__all__ = ["ARTIFACTS", "BROWSER_TIMEOUT", "browse", "check_png", "chromium"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
