"""Plumbing shared by the benchmarks: processes, /proc readings, ports, scrapes.

Everything here talks only to 127.0.0.1, and every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HOST = "127.0.0.1"


class BenchError(Exception):
    """A benchmark could not be carried out (a process died, a port never opened...)."""


# --------------------------------------------------------------------------- CPUs


@dataclass(frozen=True)
class Cores:
    """The subject (the process being measured) gets one core; everything else the rest.

    On a one-core machine both are the same core, and the numbers say so in ``meta``.
    """

    subject: frozenset[int]
    others: frozenset[int]

    @staticmethod
    def detect() -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        subject = frozenset(cpus[:1])
        others = frozenset(cpus[1:]) or subject
        return Cores(subject, others)


def pin_self(cpus: Iterable[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(cpus))


def pinned(argv: Sequence[str], cpus: Iterable[int] | None) -> list[str]:
    """``argv`` under ``taskset`` so that every thread the process starts is pinned."""
    if cpus is None:
        return list(argv)
    taskset = shutil.which("taskset")
    if taskset is None:
        return list(argv)  # Proc falls back to sched_setaffinity on the pid
    return [taskset, "-c", ",".join(str(c) for c in sorted(cpus)), *argv]


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check_alive()
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.02)
    raise BenchError(f"nothing listens on {HOST}:{port} after {timeout:g}s")


# --------------------------------------------------------------------------- processes


@dataclass
class ProcTimes:
    cpu: float  # user + system seconds, all threads
    wall: float  # monotonic


def proc_cpu(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) in seconds, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after it are fixed.
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Proc:
    """A child process with its output in a file; stopped by pid, never by name."""

    name: str
    argv: list[str]
    env: Mapping[str, str] | None = None
    cpus: Iterable[int] | None = None
    cwd: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, log_dir: Path) -> Proc:
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ if self.env is None else self.env)
        self.popen = subprocess.Popen(
            pinned(self.argv, self.cpus), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=self.cwd or str(ROOT))
        if self.cpus is not None and shutil.which("taskset") is None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.popen.pid, set(self.cpus))
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def check_alive(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.popen.returncode}: "
                             f"{self.tail()}")

    def tail(self, n: int = 1500) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-n:]
        return data.decode("utf-8", "replace").strip()

    def times(self) -> ProcTimes:
        return ProcTimes(proc_cpu(self.pid), time.monotonic())

    def stop(self, timeout: float = 6.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode


@contextlib.contextmanager
def running(proc: Proc, log_dir: Path) -> Iterator[Proc]:
    proc.start(log_dir)
    try:
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


# --------------------------------------------------------------------------- HTTP


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, timeout: float = 30.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise BenchError(f"GET {url}: HTTP {status}")
    return json.loads(body)


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.05,
               proc: Proc | None = None, what: str = "condition") -> float:
    """Poll ``pred`` until true; returns the seconds waited. Raises BenchError at timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        if proc is not None:
            proc.check_alive()
        try:
            if pred():
                return time.monotonic() - t0
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- metrics


Sample = tuple[str, dict[str, str], float]


def scrape(url: str, timeout: float = 30.0) -> list[Sample]:
    status, body = http_get(url, timeout)
    if status != 200:
        raise BenchError(f"GET {url}: HTTP {status}")
    return parse_metrics(body.decode("utf-8", "replace"))


def parse_metrics(text: str) -> list[Sample]:
    out: list[Sample] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((s.name, dict(s.labels), float(s.value)))
    return out


def metric_sum(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(v for n, lb, v in samples
               if n == name and all(lb.get(k) == val for k, val in labels.items()))


def histogram(samples: Iterable[Sample], name: str) -> dict[float, float]:
    """Cumulative bucket counts of histogram ``name`` summed over all label sets."""
    buckets: dict[float, float] = {}
    for n, lb, v in samples:
        if n == f"{name}_bucket":
            le = float(lb["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    return buckets


def histogram_delta(after: Mapping[float, float], before: Mapping[float, float]
                    ) -> dict[float, float]:
    return {le: after[le] - before.get(le, 0.0) for le in after}


def _holding(buckets: Mapping[float, float], q: float
             ) -> tuple[float, float, float, float, float] | None:
    """The bucket of a cumulative histogram that holds quantile ``q``: its lower bound (0
    for the first), the count below it, its upper bound (``inf`` above the largest finite
    one), the count up to it, and the quantile's rank; None if empty."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            return lower, below, le, buckets[le], rank
        lower, below = le, buckets[le]
    return lower, below, math.inf, total, rank


def bucket_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """Upper bound of the bucket holding quantile ``q`` (not interpolated); None if empty.

    ``inf`` means the quantile lies above the largest finite bound.
    """
    found = _holding(buckets, q)
    return None if found is None else found[2]


def bucket_estimate(buckets: Mapping[float, float], q: float) -> float | None:
    """Quantile ``q`` interpolated linearly inside the bucket that holds it, as Prometheus'
    ``histogram_quantile`` estimates it (the first bucket from 0); None if empty, the
    largest finite bound if it lies above it."""
    found = _holding(buckets, q)
    if found is None:
        return None
    lower, below, upper, up_to, rank = found
    if math.isinf(upper):
        return lower
    inside = up_to - below
    return upper if inside <= 0 else lower + (upper - lower) * (rank - below) / inside


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile."""
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


def rnd(value: float | None, digits: int = 3) -> float | None:
    if value is None:
        return None
    if math.isinf(value) or math.isnan(value):
        return value
    return round(value, digits)
