"""A redirect loop's outcome, too_many_redirects, on every surface: a real run against a
looping server on loopback, recorded by a real daemon (metrics, status page, probe page,
results API) and printed as `once` prints it (JSON, table, JUnit)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli.junit import cases, junit_report
from monitor.cli.once import make_console, print_table, result_json
from monitor.config import load_file
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.result import Result
from monitor.web.summary import MEANING
from tests.support.servers import serving, serving_daemon


async def _loop(request: web.Request) -> web.Response:
    # A proxy that forwards plain http to an app that redirects every request to https://
    # on the same host: the classic loop, with something a page must escape in it.
    return web.Response(status=301, headers={"Location": "/<b>loop</b>"})


@pytest.fixture
async def looping() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _loop)
    async with serving(app) as url:
        yield url


@pytest.fixture
async def looped(looping: str, tmp_path: Path, ctx: ProbeContext
                 ) -> tuple[Path, Result]:
    path = tmp_path / "probes.yaml"
    path.write_text(f"""\
defaults: {{interval: 1h, timeout: 2s}}
probes:
  - name: login-redirects
    http: {{url: "{looping}/login", follow_redirects: true, max_redirects: 5}}
""")
    probe = load_file(str(path)).probes[0]
    result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.TOO_MANY_REDIRECTS, result.evidence.detail
    return path, result


async def test_the_daemon_shows_it_everywhere(looped: tuple[Path, Result]) -> None:
    path, result = looped
    daemon = Daemon(DaemonOptions(str(path)))
    async with serving_daemon(daemon) as base, aiohttp.ClientSession() as session:
        daemon.record(result)
        async with session.get(f"{base}/metrics") as resp:
            metrics = await resp.text()
        async with session.get(f"{base}/api/v1/results") as resp:
            api = await resp.json()
        async with session.get(f"{base}/probe/login-redirects") as resp:
            page = await resp.text()
        async with session.get(f"{base}/") as resp:
            index = await resp.text()

    samples = {(s.name, s.labels.get("outcome", "")): s.value
               for fam in text_string_to_metric_families(metrics) for s in fam.samples
               if s.labels.get("probe") == "login-redirects"}
    assert samples[("synthmon_probe_outcome", "too_many_redirects")] == 1
    assert samples[("synthmon_probe_runs_total", "too_many_redirects")] == 1
    assert samples[("probe_success", "")] == 0
    assert samples[("probe_http_status_code", "")] == 301  # the last answer's

    (entry,) = api["probes"]
    assert entry["outcome"] == "too_many_redirects"
    hops = entry["last"]["evidence"]["redirects"]
    assert hops == [{"status": 301, "location": "/<b>loop</b>"}] * 6
    assert entry["last"]["evidence"]["hint"].startswith("A redirect loop: ")
    (incident,) = api["incidents"]
    assert incident["cause"] == "too_many_redirects, HTTP 301"
    assert incident["why"].startswith("Not a route or credentials question")

    for html in (page, index):
        assert "too_many_redirects" in html
        assert MEANING[Outcome.TOO_MANY_REDIRECTS] in html
        assert "<b>loop</b>" not in html and "&lt;b&gt;loop&lt;/b&gt;" in html
    # the probe page shows the whole chain (of each run it lists)
    assert "redirects (6)" in page and page.count("301 /&lt;b&gt;loop&lt;/b&gt;") % 6 == 0
    assert "redirects (6)" in index and "(2 more)" in index  # a card shows the first four
    assert "A redirect loop: " in page


def test_once_prints_it_in_every_format(looped: tuple[Path, Result]) -> None:
    _, result = looped
    data = json.loads(json.dumps(result_json(result)))
    assert data["outcome"] == "too_many_redirects" and data["success"] is False
    assert data["status_code"] == 301
    assert len(data["evidence"]["redirects"]) == 6

    buf = io.StringIO()
    console = make_console("never", file=buf)
    console.width = 400  # one line per line of the cell, whatever COLUMNS says
    print_table([result], console)
    table = buf.getvalue()
    assert "too_many_redirects" in table
    assert "redirects (6): 301 /<b>loop</b> → 301 /<b>loop</b>" in table
    assert "(2 more)" in table and "hint: A redirect loop:" in table

    report = ET.fromstring(junit_report(cases([result]), result_json, lambda s: s))
    failure = report.find(".//failure")
    assert failure is not None and failure.get("type") == "too_many_redirects"
    assert (failure.get("message") or "").startswith("too_many_redirects: HTTP 301 after 5")
