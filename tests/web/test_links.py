"""One click from the page to the evidence and the trace.

``--external-url`` is exported as ``synthmon_external_url_info{url}`` (the alert rules build
each page's link to /probe/NAME from it, checked by alerts.test.yml and the end-to-end
test); ``--trace-url`` turns every run's trace id into a link on the status page (index
and probe page), in ``/api/v1/results``, in ``once`` (JSON and the table) and through
``/trace/ID``, the address the dashboard's exemplars link to. Bad values are a clear
error at start, never a traceback."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from monitor.cli.once import print_table, result_json, run_all
from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.links import LinkError, Links, links_from, parse_external_url, parse_trace_url
from monitor.web.server import build_app
from tests.support.servers import ROOT, serving

TEMPLATE = "https://tempo.example.com/explore?trace={trace_id}&view=1"
EXTERNAL = "https://synthmon.example.com/eu/"


def _target() -> web.Application:
    app = web.Application()

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({}, status=200 if request.path == "/ok" else 503)

    app.router.add_get("/{tail:.*}", handle)
    return app


CONFIG = """\
defaults: {interval: 1s, timeout: 800ms, retries: 0}
probes:
  - name: ok
    http: {url: "%(base)s/ok"}
  - name: failing
    http: {url: "%(base)s/broken"}
"""


def test_parsing_and_rendering() -> None:
    assert parse_external_url("https://synthmon.example.com/eu") == EXTERNAL
    assert parse_external_url(" http://127.0.0.1:9115 ") == "http://127.0.0.1:9115/"
    for bad in ("synthmon.example.com", "ftp://x/", "https://u:p@x/", "https://x/?a=1"):
        with pytest.raises(LinkError):
            parse_external_url(bad)
    assert parse_trace_url(TEMPLATE) == TEMPLATE
    for bad in ("https://tempo/trace/", "https://tempo/{trace_id}/{span_id}", "tempo/{trace_id}"):
        with pytest.raises(LinkError):
            parse_trace_url(bad)
    links = Links(EXTERNAL, TEMPLATE)
    assert links.probe("ws-fails-closed@no_token") == f"{EXTERNAL}probe/ws-fails-closed@no_token"
    assert links.trace("4bf92f3577b34da6a3ce929d0e0e4736") == \
        "https://tempo.example.com/explore?trace=4bf92f3577b34da6a3ce929d0e0e4736&view=1"
    assert links.trace(None) is None and Links().trace("ab" * 16) is None
    assert Links().probe("x") is None
    # the environment when the flag is not given; the flag wins
    env = {"SYNTHMON_TRACE_URL": TEMPLATE, "SYNTHMON_EXTERNAL_URL": "http://e:1"}
    assert links_from(None, None, env) == Links("http://e:1/", TEMPLATE)
    assert links_from("http://f:2", None, env).external_url == "http://f:2/"
    with pytest.raises(LinkError, match="SYNTHMON_TRACE_URL"):
        links_from(None, None, {"SYNTHMON_TRACE_URL": "https://t/no-placeholder"})


async def test_every_surface_links_the_trace_and_the_metrics_say_where(tmp_path: Path) -> None:
    async with serving(_target()) as target:
        path = tmp_path / "probes.yaml"
        path.write_text(CONFIG % {"base": target})
        daemon = Daemon(DaemonOptions(str(path), links=Links(EXTERNAL, TEMPLATE)))
        await daemon.start()
        try:
            async with serving(build_app(daemon)) as base, \
                    aiohttp.ClientSession() as s:
                deadline = time.monotonic() + 20
                while len(daemon.history.runs("failing")) < 2:
                    assert time.monotonic() < deadline, "fewer than 2 runs in 20 s"
                    await asyncio.sleep(0.1)
                async with s.get(f"{base}/api/v1/results") as resp:
                    api = await resp.json()
                pages = {}
                for page in ("/", "/probe/failing"):
                    async with s.get(base + page) as resp:
                        assert resp.status == 200
                        pages[page] = await resp.text()
                async with s.get(f"{base}/metrics") as resp:
                    metrics = await resp.text()
                tid = api["probes"][1]["runs"][0]["trace_id"]
                async with s.get(f"{base}/trace/{tid}", allow_redirects=False) as resp:
                    assert resp.status == 302
                    assert resp.headers["Location"] == TEMPLATE.replace("{trace_id}", tid)
                async with s.get(f"{base}/trace/not-a-trace-id") as resp:
                    assert resp.status == 400
        finally:
            await daemon.stop()
    assert f'synthmon_external_url_info{{url="{EXTERNAL}"}} 1' in metrics
    for probe in api["probes"]:
        assert probe["url"] == f"{EXTERNAL}probe/{probe['probe']}"
        for run in [probe["last"], *probe["runs"]]:
            assert run["trace_url"] == TEMPLATE.replace("{trace_id}", run["trace_id"])
    failing = api["probes"][1]["last"]
    href = TEMPLATE.replace("{trace_id}", failing["trace_id"]).replace("&", "&amp;")
    assert f'href="{href}"' in pages["/"]  # the failing card's evidence
    run_links = re.findall(r'href="https://tempo\.example\.com/explore\?trace=([0-9a-f]{32})',
                           pages["/probe/failing"])
    assert failing["trace_id"] in run_links and len(set(run_links)) >= 2  # every run's row


async def test_without_a_template_no_link_and_trace_says_how(tmp_path: Path) -> None:
    async with serving(_target()) as target:
        path = tmp_path / "probes.yaml"
        path.write_text(CONFIG % {"base": target})
        daemon = Daemon(DaemonOptions(str(path)))
        await daemon.start()
        try:
            async with serving(build_app(daemon)) as base, aiohttp.ClientSession() as s:
                async with s.get(f"{base}/trace/{'ab' * 16}") as resp:
                    assert resp.status == 404
                    assert "--trace-url" in await resp.text()
                async with s.get(f"{base}/metrics") as resp:
                    assert "synthmon_external_url_info" not in await resp.text()
        finally:
            await daemon.stop()


async def test_once_json_and_table_carry_the_trace_link() -> None:
    async with serving(_target()) as target:
        config = load_text(CONFIG % {"base": target}, env={})
        results = await run_all(config)
    links = Links(None, TEMPLATE)
    records = [result_json(r, links) for r in results]
    assert all(rec["trace_url"] == TEMPLATE.replace("{trace_id}", rec["trace_id"])
               for rec in records)
    assert all(result_json(r)["trace_url"] is None for r in results)
    from rich.console import Console

    console = Console(record=True, width=300, color_system=None)
    print_table(results, console, links)
    text = console.export_text()
    failing = next(r for r in results if not r.success)
    assert TEMPLATE.replace("{trace_id}", failing.trace_id or "") in text


@pytest.mark.parametrize(("args", "said"), [
    (["run", "--external-url", "synthmon.example.com"], "--external-url: must be an http"),
    (["once", "--trace-url", "https://tempo/trace"], "--trace-url: must contain {trace_id}"),
])
def test_a_bad_link_setting_is_a_clear_error(tmp_path: Path, args: list[str], said: str) -> None:
    (tmp_path / "probes.yaml").write_text("probes: []\n")
    done = subprocess.run([sys.executable, "-m", "monitor", *args, "-c",
                           str(tmp_path / "probes.yaml")], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
