"""The fault matrix: every probe against every way a target can misbehave, on loopback.

Each case runs one real probe (through ``run_probe``, the daemon's dispatch with its hard
deadline) against a raw asyncio server from :mod:`tests.hostile` running in a child
process, so that memory measured here is the probing side's alone. Each must end in the
outcome that tells the truth, within the probe's timeout, with flat memory. Then twenty of
them misbehave at once in a real :class:`Daemon` while a healthy probe must keep its
schedule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.sinks.metrics import LAG_BUCKETS
from tests.support.hostile import ROOT, ZooProc, rss_bytes, zoo_process
from tests.support.servers import need_tool
from tests.support.timing import SLACK

# Seconds a run may take beyond its timeout: a loaded machine's lateness. Which timer ended
# the run is told by its outcome and detail (the hard deadline's would say "no result within
# the probe timeout"), so the bound only has to tell "at its timeout" from "when the hostile
# server let go" (30 s).
MARGIN = SLACK
MAX_RSS_GROWTH = 50 * 1024 * 1024

pytestmark = pytest.mark.both_loops


# --------------------------------------------------------------------------- egress audit

# Every socket operation of this process is seen through CPython's audit events (not a
# mock: the calls happen, the hook only records them). The matrix asserts that nothing
# left loopback and that no name under .invalid was ever handed to the system resolver.
# The events come from asyncio's loop only: uvloop connects and resolves in libuv, below
# them. For both loops (and child processes) the session's egress guard holds: the tests
# run in a network namespace that has only loopback and count every attempt to leave it
# (tests/support/netguard.py, checked around every test, proven by tests/test_egress_guard.py).
_AUDIT: list[tuple[str, tuple[Any, ...]]] | None = None
_AUDIT_LOCK = threading.Lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDIT is not None and event in ("socket.connect", "socket.getaddrinfo",
                                        "socket.sendto", "socket.sendmsg"):
        with _AUDIT_LOCK:
            _AUDIT.append((event, args))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def egress() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    global _AUDIT
    _AUDIT = []
    try:
        yield _AUDIT
    finally:
        _AUDIT = None


def _address_of(event: str, args: tuple[Any, ...]) -> str | None:
    address = args[1] if event != "socket.getaddrinfo" else None
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooProc]:
    with zoo_process(tmp_path_factory.mktemp("zoo-tls")) as z:
        yield z


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Case:
    fault: str  # a name in tests.hostile.FAULTS, "refused" or "dns"
    outcome: Outcome
    detail: str  # a regex the evidence detail must match
    status: int | None = None
    close: int | None = None
    ca: str | None = None  # trust this zoo certificate (to see expiry / name mismatch)
    timeout: float = 1.0

    @property
    def kind(self) -> str:
        return "websocket" if self.fault.startswith("ws/") else "http"


HTTP_CASES = [
    Case("refused", Outcome.CONNECT_REFUSED, "^connection refused$"),
    Case("http/silence", Outcome.TIMEOUT, "while waiting for the response headers"),
    Case("http/mid_headers", Outcome.TIMEOUT, "while waiting for the response headers"),
    Case("http/mid_body", Outcome.TIMEOUT, "while reading the body", status=200),
    Case("http/slowloris", Outcome.TIMEOUT, "while waiting for the response headers"),
    Case("http/reset", Outcome.CONNECTION_RESET, "reset"),
    Case("http/tls_reset", Outcome.CONNECTION_RESET, "during tls"),
    Case("http/garbage", Outcome.PROTOCOL_ERROR, "^malformed HTTP answer"),
    Case("http/gigabyte", Outcome.SUCCESS, r"only the first 1048576 bytes were read",
         status=200),
    Case("http/endless_chunked", Outcome.SUCCESS, r"only the first 1048576 bytes were read",
         status=200),
    Case("http/tls_self_signed", Outcome.TLS_ERROR, "self-signed certificate"),
    Case("http/tls_expired", Outcome.TLS_ERROR, "certificate has expired", ca="expired"),
    Case("http/tls_wrong_host", Outcome.TLS_ERROR, "IP address mismatch", ca="wrong_host"),
    Case("dns", Outcome.DNS_ERROR, "^name resolution failed"),
]

WS_CASES = [
    Case("ws/refused", Outcome.CONNECT_REFUSED, "^connection refused"),
    Case("ws/silence", Outcome.TIMEOUT, "during handshake"),
    Case("ws/mid_headers", Outcome.TIMEOUT, "during handshake"),
    Case("ws/mid_body", Outcome.MESSAGE_TIMEOUT, "no message before the probe timeout",
         status=101),
    Case("ws/slowloris", Outcome.TIMEOUT, "during handshake"),
    Case("ws/reset", Outcome.CONNECTION_RESET, "closed the connection before answering"),
    Case("ws/tls_reset", Outcome.CONNECTION_RESET, "during tls"),
    Case("ws/garbage", Outcome.PROTOCOL_ERROR, "not valid HTTP: invalid HTTP status line"),
    Case("ws/gigabyte_answer", Outcome.NOT_UPGRADED,
         r"HTTP 200 OK \(plain answer\).*not read to the end \(body too large", status=200),
    Case("ws/endless_chunked_answer", Outcome.NOT_UPGRADED,
         r"HTTP 200 OK \(plain answer\).*not read to the end \(chunk too large", status=200),
    Case("ws/gigabyte_message", Outcome.PROTOCOL_ERROR, "larger than max_message_bytes",
         status=101, close=1009),
    Case("ws/endless_fragments", Outcome.PROTOCOL_ERROR, "larger than max_message_bytes",
         status=101, close=1009),
    Case("ws/wrong_accept", Outcome.PROTOCOL_ERROR, "wrong Sec-WebSocket-Accept", status=101),
    Case("ws/close_at_once", Outcome.CLOSED_BY_SERVER, "closed the connection with 1000 'bye'",
         status=101, close=1000),
    Case("ws/drop_at_once", Outcome.CLOSED_BY_SERVER, "dropped without a close frame",
         status=101, close=1006),
    Case("ws/binary", Outcome.UNEXPECTED_MESSAGE, "got a binary frame", status=101),
    Case("ws/16mb", Outcome.PROTOCOL_ERROR, "larger than max_message_bytes", status=101,
         close=1009),
    Case("ws/ping_flood", Outcome.PROTOCOL_ERROR, "flooded the connection with pings",
         status=101),
    Case("ws/deaf_to_close", Outcome.SUCCESS, "^upgraded; 1 step passed$", status=101),
    Case("ws/tls_self_signed", Outcome.TLS_ERROR, "self-signed certificate"),
    Case("ws/tls_expired", Outcome.TLS_ERROR, "certificate has expired", ca="expired"),
    Case("ws/tls_wrong_host", Outcome.TLS_ERROR, "IP address mismatch", ca="wrong_host"),
    Case("ws/dns", Outcome.DNS_ERROR, "^name resolution failed"),
]


def url_for(z: ZooProc, fault: str) -> str:
    ws = fault.startswith("ws/")
    if fault.endswith("dns"):
        return f"{'ws' if ws else 'http'}://synthmon-fault-matrix.invalid/probe"
    name = "refused" if fault.endswith("refused") else fault
    tls = "/tls_" in fault
    scheme = ("wss" if tls else "ws") if ws else ("https" if tls else "http")
    return z.url(name, scheme, "/api/v1/websocket" if ws else "/health")


def probe_yaml(z: ZooProc, case: Case, name: str = "under-test", interval: str = "10s"
               ) -> str:
    body = [f"url: {url_for(z, case.fault)}"]
    if case.ca:
        body.append(f"tls: {{ca_file: '{z.cert(case.ca)}'}}")
    if case.kind == "websocket":
        body.append("steps: [{expect: {json: {type: connect}}}]")
    inner = "\n".join(f"      {line}" for line in body)
    return (f"  - name: {name}\n    interval: {interval}\n    timeout: {case.timeout}s\n"
            f"    {case.kind}:\n{inner}\n")


async def check_case(z: ZooProc, case: Case, ctx: ProbeContext) -> None:
    probe = load_text("probes:\n" + probe_yaml(z, case), env={}).probes[0]
    rss_before = rss_bytes()
    t0 = time.monotonic()
    result = await run_probe(probe, ctx)
    elapsed = time.monotonic() - t0
    growth = rss_bytes() - rss_before
    ev = result.evidence
    assert result.outcome is case.outcome, (case, ev)
    assert re.search(case.detail, ev.detail), (case.detail, ev.detail)
    assert result.status_code == case.status, (result.status_code, ev)
    assert result.close_code == case.close, (result.close_code, ev)
    assert elapsed <= case.timeout + MARGIN, elapsed
    assert result.duration_seconds <= case.timeout + MARGIN, result.duration_seconds
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 1e6:.1f} MB"
    if ev.body_excerpt is not None:  # evidence stays an excerpt whatever the body was
        assert len(ev.body_excerpt.encode()) <= 1024 + 3


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.fault for c in HTTP_CASES])
async def test_http_fault(hostile: ZooProc, case: Case, ctx: ProbeContext,
                          egress: list[tuple[str, tuple[Any, ...]]]) -> None:
    await check_case(hostile, case, ctx)


@pytest.mark.parametrize("case", WS_CASES, ids=[c.fault for c in WS_CASES])
async def test_websocket_fault(hostile: ZooProc, case: Case, ctx: ProbeContext,
                               egress: list[tuple[str, tuple[Any, ...]]]) -> None:
    await check_case(hostile, case, ctx)


async def test_big_bodies_keep_memory_flat_over_repeats(hostile: ZooProc,
                                                        ctx: ProbeContext) -> None:
    """Twenty gigabyte and endless answers in a row: memory does not follow the bytes sent."""
    cases = [c for c in HTTP_CASES + WS_CASES
             if c.fault in ("http/gigabyte", "http/endless_chunked", "ws/gigabyte_answer",
                            "ws/endless_chunked_answer", "ws/gigabyte_message", "ws/16mb")]
    await check_case(hostile, cases[0], ctx)  # warm up: imports, TLS contexts, buffers
    before = rss_bytes()
    for _ in range(4):
        for case in cases:
            await check_case(hostile, case, ctx)
    growth = rss_bytes() - before
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 1e6:.1f} MB over 24 runs"


def test_nothing_left_loopback(egress: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Runs after the matrix (same module): every socket this process connected or sent to
    was on loopback, and no .invalid name reached the system resolver."""
    assert egress, "the audit hook saw no socket activity: the matrix did not run first?"
    for event, args in egress:
        if event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else str(args[0] or "")
            assert not host.rstrip(".").endswith(".invalid"), (event, args)
            continue
        address = _address_of(event, args)
        if address is None or address.startswith("/"):
            continue  # a Unix socket
        assert ipaddress.ip_address(address.split("%")[0]).is_loopback, (event, args)


def test_unresolvable_names_send_nothing_anywhere(tmp_path: Path, hostile: ZooProc) -> None:
    """The whole `synthmon once` process under strace: the .invalid probes make no network
    call at all (no DNS query), while a loopback probe in the same run is seen (the
    control that strace records what it should)."""
    strace = need_tool("strace", "apt-get install strace, or `make system-deps`")
    config = tmp_path / "probes.yaml"
    config.write_text(
        "probes:\n"
        "  - name: http-dns\n    http: {url: 'http://synthmon-strace.invalid/health'}\n"
        "  - name: ws-dns\n    websocket: {url: 'ws://synthmon-strace.invalid/ws'}\n"
        f"  - name: control\n    http: {{url: '{hostile.url('http/healthy')}'}}\n")
    trace = tmp_path / "strace.out"
    proc = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", str(trace),
         sys.executable, "-m", "monitor", "once", "-c", str(config), "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert '"outcome": "dns_error"' in proc.stdout, proc.stdout + proc.stderr
    calls = [ln for ln in trace.read_text().splitlines()
             if "AF_INET" in ln or "AF_INET6" in ln]
    assert any(f"sin_port=htons({hostile.ports['http/healthy']})" in ln for ln in calls), calls
    for line in calls:
        addr = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', line)
        assert addr is not None, line
        ip = addr.group(1) or addr.group(2)
        assert ipaddress.ip_address(ip).is_loopback, line
        assert "htons(53)" not in line, line


# --------------------------------------------------------------------------- on schedule

# Twenty misbehaving probes at once: every kind of hang, flood and giant answer.
STORM = [
    "http/silence", "http/mid_headers", "http/mid_body", "http/slowloris", "http/gigabyte",
    "http/endless_chunked", "http/garbage", "http/reset", "http/tls_expired", "refused",
    "ws/silence", "ws/mid_headers", "ws/mid_body", "ws/slowloris", "ws/gigabyte_message",
    "ws/endless_fragments", "ws/16mb", "ws/ping_flood", "ws/deaf_to_close",
    "ws/gigabyte_answer",
]
# The healthy probe's interval and timeout leave room for a starved machine, not for the
# storm: at 0.25 s / 0.2 s, one run in ~20 timed out with two busy loops beside the suite.
HEALTHY_INTERVAL = 0.5
HEALTHY_TIMEOUT = 0.4


async def test_a_healthy_probe_keeps_its_schedule_while_twenty_misbehave(
        hostile: ZooProc, tmp_path: Path) -> None:
    by_fault = {c.fault: c for c in HTTP_CASES + WS_CASES}
    storm = [by_fault[f] for f in STORM]
    assert len(storm) == 20
    text = "defaults: {retries: 0}\nprobes:\n" + "".join(
        probe_yaml(hostile, case, name=f"storm-{i}", interval="1.2s")
        for i, case in enumerate(storm))
    text += (f"  - name: healthy\n    interval: {HEALTHY_INTERVAL}s\n"
             f"    timeout: {HEALTHY_TIMEOUT}s\n"
             f"    http: {{url: '{hostile.url('http/healthy', path='/health')}'}}\n")
    config = tmp_path / "probes.yaml"
    config.write_text(text)

    daemon = Daemon(DaemonOptions(config_path=str(config)))
    await daemon.start()
    t0 = time.time()
    try:
        await asyncio.sleep(6.0)
    finally:
        await daemon.stop()

    runs = sorted(daemon.history.runs("healthy"), key=lambda r: r.started_at)
    runs = [r for r in runs if r.started_at >= t0 + 1.0]  # after the storm began
    expected = (6.0 - 1.0) / HEALTHY_INTERVAL
    assert len(runs) >= expected - 2, (len(runs), expected)
    assert all(r.outcome is Outcome.SUCCESS for r in runs), [r.evidence for r in runs]
    # Kept its schedule: no run skipped or doubled (each gap is the interval, give or take
    # less than half of it), and the runs themselves not starved (its timeout held by every
    # run, as the outcomes say; most far within it: a median under 0.1 s).
    gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(runs)]
    assert max(abs(g - HEALTHY_INTERVAL) for g in gaps) < HEALTHY_INTERVAL / 2, gaps
    durations = sorted(r.duration_seconds for r in runs)
    assert durations[len(durations) // 2] < 0.1, durations

    # Every probe's start lag (the daemon's histogram): the storm delays no start by as
    # much as 0.25 s (half the healthy probe's interval), and most by far less.
    lag = daemon.surfacer.lag
    within = dict(zip(LAG_BUCKETS, (sum(lag.counts[:i + 1]) for i in range(len(LAG_BUCKETS))),
                      strict=True))
    assert lag.count >= len(runs) + 20
    assert within[0.25] == lag.count, lag.counts
    assert within[0.05] >= lag.count * 0.9, lag.counts
    assert lag.sum / lag.count < 0.05, lag.sum / lag.count

    bound = next((b for b, n in within.items() if n == lag.count), None)
    print(f"storm: {len(runs)} healthy runs, start gaps {min(gaps):.3f}-{max(gaps):.3f}s for "
          f"a {HEALTHY_INTERVAL}s interval, median duration {durations[len(durations) // 2]:.4f}s;"
          f" lag of all {lag.count} runs: mean {lag.sum / lag.count * 1000:.1f}ms, all <= {bound}s")

    # And the storm itself was reported truthfully, within each probe's timeout.
    for i, case in enumerate(storm):
        seen = daemon.history.runs(f"storm-{i}")
        assert seen, case
        for r in seen:
            assert r.outcome is case.outcome, (case.fault, r.evidence)
            assert r.duration_seconds <= case.timeout + MARGIN, (case.fault, r)
