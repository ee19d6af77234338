"""A failed reload is a red banner on the status page, with the errors and the time, until a
reload succeeds: a real daemon in this process, reloaded through POST /-/reload."""

from __future__ import annotations

import re
import time
from pathlib import Path

import aiohttp

from monitor.daemon import Daemon, DaemonOptions, ReloadFailure
from monitor.sinks.history import History
from monitor.web.statuspage import render_index, render_probe
from tests.support.servers import serving_daemon

GOOD = """\
defaults: {interval: 1h}
probes:
  - name: api
    http: {url: "http://127.0.0.1:1/api"}
"""
BAD = GOOD + "  - name: api\n    http: {url: \"http://127.0.0.1:1/again\"}\n"  # a duplicate


async def test_failed_reload_is_shown_until_a_good_one(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(GOOD)
    daemon = Daemon(DaemonOptions(str(path)))
    async with serving_daemon(daemon) as base, aiohttp.ClientSession() as http:
        async def page(p: str = "/") -> str:
            async with http.get(base + p) as resp:
                assert resp.status == 200
                return await resp.text()

        assert "Reload failed" not in await page()
        path.write_text(BAD)
        before = time.time()
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 400
            errors = (await resp.json())["errors"]
        failure = daemon.reload_failure
        assert isinstance(failure, ReloadFailure)
        assert failure.at >= before and failure.errors == tuple(errors)
        assert failure.running_since is not None and failure.running_since < failure.at

        for text in (await page(), await page("/probe/api")):
            banner = re.search(r'<section class="reload" role="alert".*?</section>', text, re.S)
            assert banner, text
            assert "Reload failed" in banner[0] and str(path) in banner[0]
            assert "duplicate" in banner[0].lower()  # the error itself
            assert re.search(r"at \d\d:\d\d:\d\d UTC \(\d+s ago\)", banner[0])
            assert "still running the config loaded at" in banner[0]
        assert "<title>✖ reload failed" in await page()

        # A second bad reload keeps the banner (with the newer time); a good one clears it.
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 400
        assert daemon.reload_failure is not None and daemon.reload_failure.at >= failure.at
        path.write_text(GOOD)
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 200
        assert daemon.reload_failure is None
        assert "Reload failed" not in await page()


def test_reload_banner_escapes_and_keeps_each_error() -> None:
    h = History()
    now = time.time()
    failure = ReloadFailure(at=now - 60, path="/etc/<x>.yaml",
                            errors=("a.yaml:3: probes.0: <script>", "a.yaml:9: dup"),
                            running_since=now - 3600)
    page = render_index(h, failure)
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "a.yaml:9: dup" in page and "(60s ago)" in page
    assert "Reload failed" not in render_index(h)
    assert "Reload failed" in render_probe(h, "nope", failure)
