"""What a first run would otherwise do inside its clock is done before the runs start
(monitor/preload.py), and ``once`` starts its runs apart (monitor/cli/once.py)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from monitor.cli.once import ONCE_SPACING, ONCE_SPREAD, run_all
from monitor.config import load_text
from monitor.preload import preload
from monitor.probes.tls import _cached_context
from tests.support.servers import ROOT, serving


def test_the_tls_contexts_of_the_config_are_built_before_any_run(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")  # a context that cannot be built: the run says so
    config = load_text(f"""\
probes:
  - {{name: a, http: {{url: 'https://127.0.0.1:1/a'}}}}
  - {{name: b, http: {{url: 'https://127.0.0.1:1/b', tls: {{insecure_skip_verify: true}}}}}}
  - {{name: c, websocket: {{url: 'wss://127.0.0.1:1/c', tls: {{insecure_skip_verify: true}}}}}}
  - {{name: d, http: {{url: 'http://127.0.0.1:1/d', follow_redirects: true}}}}
  - {{name: e, http: {{url: 'https://127.0.0.1:1/e', tls: {{ca_file: '{ca}'}}}}}}
  - {{name: f, http: {{url: 'http://127.0.0.1:1/f'}}}}
""", env={})
    _cached_context.cache_clear()
    preload(config)
    # the system's store (a, d: a redirect may lead to https) and skip-verify (b, c): two
    # contexts; e's ca_file is refused at its run, not here
    assert _cached_context.cache_info().currsize == 2
    before = _cached_context.cache_info()
    preload(config)  # a reload of the same config builds nothing
    after = _cached_context.cache_info()
    assert after.misses == before.misses + 1  # e's refused file only: it is tried again


def test_a_plain_http_config_builds_no_context() -> None:
    _cached_context.cache_clear()
    preload(load_text("probes:\n  - {name: a, http: {url: 'http://127.0.0.1:1/'}}\n", env={}))
    assert _cached_context.cache_info().currsize == 0


def test_the_idna_codec_is_imported_before_the_first_request() -> None:
    script = """
import sys
from monitor.config import load_text
from monitor.preload import preload
assert "encodings.idna" not in sys.modules
preload(load_text("probes:\\n  - {name: a, http: {url: 'http://127.0.0.1:1/'}}\\n", env={}))
assert "encodings.idna" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


async def test_once_starts_its_runs_apart() -> None:
    """Each run of ``once`` starts ONCE_SPACING after the one before (spread over at most
    ONCE_SPREAD): a run's own CPU is not in the clocks of the others."""
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", ok)
    async with serving(app) as url:
        n = 12
        config = load_text("defaults: {retries: 0}\nprobes:\n" + "".join(
            f"  - {{name: p{i}, http: {{url: '{url}/p{i}'}}}}\n" for i in range(n)), env={})
        results = await run_all(config)
    assert all(r.success for r in results)
    starts = [r.started_at for r in results]  # in config order, as they were started
    spacing = min(ONCE_SPACING, ONCE_SPREAD / n)
    assert starts == sorted(starts)
    # each start waits for its turn (a loaded loop may start one late, never early)
    assert starts[-1] - starts[0] >= 0.9 * (n - 1) * spacing, starts
    assert starts[-1] - starts[0] < ONCE_SPREAD + 1.0


class _AtOnce(asyncio.Protocol):
    """Answers each request as soon as its headers are in, as nginx does on loopback."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            self.transport.close()


async def test_the_first_run_of_a_new_once_process_carries_no_start_up_work(
        tmp_path: Path) -> None:
    """A new user saw 45-110 ms in ``once`` for targets answering in 1-5 ms: start-up work
    (imports, TLS contexts, the first request's set-up) inside the first runs' clocks. In a
    fresh process, the first run's duration reads like the runs after it (a run's clock
    starts at its first I/O, monitor/probes/http/run.py). Two processes at most: a busy
    machine may delay any one run."""
    server = await asyncio.get_running_loop().create_server(_AtOnce, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = tmp_path / "probes.yaml"
    path.write_text("defaults: {retries: 0}\nprobes:\n" + "".join(
        f"  - {{name: p{i}, http: {{url: 'http://127.0.0.1:{port}/p{i}'}}}}\n"
        for i in range(6)))
    excess: list[float] = []
    try:
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "once", "-c", str(path), "--format", "json",
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            durations = [r["duration_seconds"] for r in json.loads(out)]
            excess.append(durations[0] - statistics.median(durations[1:]))
            if excess[-1] < 0.005:
                break
    finally:
        server.close()
    assert min(excess) < 0.005, excess
