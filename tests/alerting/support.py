"""Helpers for the alerting tests and the end-to-end test with real Prometheus/Alertmanager.

- :func:`binary` finds promtool, amtool, prometheus, alertmanager or fails the test with how
  to install them (never skips).
- :func:`write_fast_rules` copies deploy/prometheus/alerts.yml with its durations scaled:
  every ``for:`` and every range of an expression (``[20s]``), ``* scale``.
- :func:`write_test_alertmanager_config` copies deploy/alertmanager/alertmanager.yml with
  the PagerDuty ``url`` and the ticket webhook pointed at local receivers, the routing key
  written to a temporary file, and the grouping timers either fixed or, with ``factor``,
  the shipped ones divided by it.
- :func:`write_test_prometheus_config` writes a prometheus.yml scraping synthmon with
  job="synthmon", evaluating the given rule files and sending to the given Alertmanager;
  :func:`write_scaled_prometheus_config` does the same from the shipped
  deploy/prometheus/prometheus.yml, its scrape and evaluation intervals divided by a factor.
- :func:`scaled_probe_env` the shipped probes.yaml's timing defaults (``${PROBE_INTERVAL:-60s}``
  ...) divided by a factor, as the environment that sets them.
- :func:`write_scaled_location_config` / :func:`write_scaled_central_config`: the fleet's
  shipped deploy/prometheus/fleet/ configs (a location's Prometheus scraping its shards, the
  central one federating the locations and evaluating the rules), their timers divided by a
  factor.
- :func:`query`, :func:`vector`, :func:`wait_until`, :func:`first_failing_run`: reading
  Prometheus and the daemons' run histories in the end-to-end tests.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import stop_process

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
FLEET_ALERTS = DEPLOY / "prometheus" / "fleet-alerts.yml"
FLEET_ALERTS_TEST = DEPLOY / "prometheus" / "fleet-alerts.test.yml"
FLEET_LOCATION = DEPLOY / "prometheus" / "fleet" / "location.yml"
FLEET_CENTRAL = DEPLOY / "prometheus" / "fleet" / "central.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts.test.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
SHIPPED_PROBES = ROOT / "probes.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "synthmon.json"
RUNBOOK_URL = "https://github.com/synthmon/synthmon/blob/main/docs/runbooks/{}.md"

# Debian package that ships each binary (installed by `make system-deps`).
_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "alertmanager": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "kubectl": "kubectl",
}


def binary(name: str) -> str:
    """Path of a required binary; fails (does not skip) the test when it is missing.

    Debian installs Alertmanager as ``prometheus-alertmanager``; ``alertmanager`` finds it.
    """
    candidates = [name, "prometheus-alertmanager"] if name == "alertmanager" else [name]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    package = _PACKAGES.get(name, name)
    pytest.fail(
        f"{name} not found on PATH: install it with `make system-deps` "
        f"(apt-get install {package})",
        pytrace=False,
    )


def run(
    args: Sequence[str], *, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


# --------------------------------------------------------------------------- durations

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> float:
    """Prometheus duration (``1h30m``, ``90s``, ``500ms``) -> seconds."""
    text = str(text).strip()
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return seconds


def scaled(duration: str, factor: float) -> str:
    """A Prometheus/Alertmanager duration divided by ``factor`` (to the millisecond)."""
    return format_duration(parse_duration(duration) / factor)


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest exact Prometheus duration (``0s``, ``1500ms``, ``2m``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


# --------------------------------------------------------------------------- rules

def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    """Every alerting rule of a rules file, in file order."""
    return [
        rule
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_names(path: Path = ALERTS) -> list[str]:
    return [rule["alert"] for rule in alert_rules(path)]


_RANGE = re.compile(r"\[(\d+(?:ms|s|m|h|d|w|y))\]")


def write_fast_rules(
    dst_dir: Path,
    *,
    scale: float = 1 / 60,
    minimum: float = 0.0,
    src: Path = ALERTS,
    name: str = "alerts.yml",
) -> Path:
    """Copy a rules file with its durations ``* scale``: every ``for:`` and every range in
    an expression (``min_over_time(x[20s])``); the rest is as shipped.

    ``minimum`` (seconds) keeps a ``for`` from vanishing; a missing or ``0s`` ``for`` stays
    as it is. ``scale=1/factor`` is the time compression of the end-to-end test. Returns the
    written path.
    """
    doc = load_yaml(src)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                seconds = parse_duration(rule["for"])
                if seconds > 0:
                    rule["for"] = format_duration(max(minimum, seconds * scale))
            rule["expr"] = _RANGE.sub(
                lambda m: f"[{format_duration(parse_duration(m.group(1)) * scale)}]",
                rule["expr"])
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / name
    out.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- alertmanager

def _walk_routes(route: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield route
    for child in route.get("routes", []) or []:
        yield from _walk_routes(child)


def write_test_alertmanager_config(
    dst_dir: Path,
    *,
    pagerduty_url: str,
    webhook_url: str,
    routing_key: str = "synthmon-e2e-routing-key-0123456789",
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    factor: float | None = None,
    src: Path = ALERTMANAGER,
) -> Path:
    """Copy alertmanager.yml for a test: local PagerDuty/webhook receivers, fast timers.

    Everything else (routes, matchers, inhibit rules, templates) is kept as shipped.
    ``group_interval`` also paces resolved notifications, hence the default of 1s. With
    ``factor``, every timer is the shipped one divided by it instead (the fixed ones are
    ignored): the routes as shipped, time-compressed.
    """
    doc = load_yaml(src)
    dst_dir.mkdir(parents=True, exist_ok=True)
    key_file = dst_dir / "pagerduty-routing-key"
    key_file.write_text(routing_key + "\n", encoding="utf-8")
    doc.setdefault("global", {})["pagerduty_url"] = pagerduty_url
    timers = ("group_wait", "group_interval", "repeat_interval")
    if factor is not None:
        for route in _walk_routes(doc["route"]):
            for key in timers:
                if key in route:
                    route[key] = scaled(route[key], factor)
        if "resolve_timeout" in doc["global"]:
            doc["global"]["resolve_timeout"] = scaled(doc["global"]["resolve_timeout"], factor)
    else:
        for route in _walk_routes(doc["route"]):
            for key, value in zip(timers, (group_wait, group_interval, repeat_interval),
                                  strict=True):
                if key in route or route is doc["route"]:
                    route[key] = value
    for receiver in doc["receivers"]:
        for pd in receiver.get("pagerduty_configs", []) or []:
            pd["routing_key_file"] = str(key_file)
            pd["url"] = pagerduty_url
        for hook in receiver.get("webhook_configs", []) or []:
            hook["url"] = webhook_url
    out = dst_dir / "alertmanager.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- prometheus

def write_test_prometheus_config(
    dst_dir: Path,
    *,
    synthmon_targets: Sequence[str],
    alertmanager_target: str,
    rule_files: Sequence[Path],
    interval: str = "1s",
) -> Path:
    """A prometheus.yml for a test: job="synthmon" (the name the rules use), fast timers."""
    doc = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "synthmon",
                "scrape_interval": interval,
                "static_configs": [{"targets": list(synthmon_targets)}],
            }
        ],
    }
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / "prometheus.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def write_scaled_prometheus_config(
    dst_dir: Path,
    *,
    factor: float,
    synthmon_targets: Sequence[str],
    alertmanager_target: str,
    rule_files: Sequence[Path],
    src: Path = PROMETHEUS_YML,
) -> Path:
    """The shipped prometheus.yml with its scrape and evaluation intervals divided by
    ``factor``; its synthmon job scrapes ``synthmon_targets``, the other jobs are left out,
    rule files and Alertmanager are the test's."""
    doc = load_yaml(src)
    glob = doc["global"]
    for key in ("scrape_interval", "evaluation_interval"):
        glob[key] = scaled(glob[key], factor)
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "synthmon"]
    if "scrape_interval" in job:
        job["scrape_interval"] = scaled(job["scrape_interval"], factor)
    job["static_configs"] = [{"targets": list(synthmon_targets)}]
    doc["scrape_configs"] = [job]
    doc["rule_files"] = [str(p) for p in rule_files]
    doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]}
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / "prometheus.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def write_scaled_location_config(
    dst_dir: Path,
    *,
    factor: float,
    location: str,
    synthmon_targets: Sequence[str],
    src: Path = FLEET_LOCATION,
) -> Path:
    """The shipped Prometheus of one location: its scrape interval and timeout divided by
    ``factor``, ``location`` and the shards' targets filled in; the rest as shipped."""
    doc = load_yaml(src)
    glob = doc["global"]
    for key in ("scrape_interval", "scrape_timeout"):
        glob[key] = scaled(glob[key], factor)
    glob["external_labels"]["location"] = location
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == "synthmon"
    job["static_configs"] = [{"targets": list(synthmon_targets)}]
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / "location.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def write_scaled_central_config(
    dst_dir: Path,
    *,
    factor: float,
    locations: dict[str, str],
    rule_files: Sequence[Path],
    alertmanager_target: str,
    src: Path = FLEET_CENTRAL,
) -> Path:
    """The shipped central Prometheus: its scrape (federation) and evaluation intervals and
    scrape timeout divided by ``factor``, federating ``locations`` (name -> host:port of
    that location's Prometheus), with the given rule files (the shipped ones, scaled) and
    Alertmanager. The federation job as shipped otherwise."""
    doc = load_yaml(src)
    glob = doc["global"]
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        glob[key] = scaled(glob[key], factor)
    assert [Path(p).name for p in doc["rule_files"]] == [Path(p).name for p in rule_files]
    doc["rule_files"] = [str(p) for p in rule_files]
    doc["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]}
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == "synthmon-federate" and job["honor_labels"] is True
    job["static_configs"] = [{"targets": [target], "labels": {"location": name}}
                             for name, target in locations.items()]
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / "central.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


_ENV_DEFAULT = re.compile(r"^\$\{(\w+):-([^}]*)\}$")


def shipped_probe_timings(src: Path = SHIPPED_PROBES) -> dict[str, str]:
    """The shipped probes.yaml's timing defaults by the variable that sets each:
    ``{"PROBE_INTERVAL": "60s", "PROBE_TIMEOUT": "10s", "PROBE_RETRIES": "1", ...}``."""
    found: dict[str, str] = {}
    for key, value in load_yaml(src)["defaults"].items():
        m = _ENV_DEFAULT.match(str(value))
        if key in ("interval", "timeout", "retries", "retry_delay") and m:
            found[m.group(1)] = m.group(2)
    return found


def scaled_probe_env(factor: float, src: Path = SHIPPED_PROBES) -> dict[str, str]:
    """The environment that runs the shipped probes.yaml with its interval and retry delay
    divided by ``factor`` (retries as shipped).

    The timeout is not a hop of the alerting path but a bound on a hung run: it gets the
    largest value the load-time budget (timeout x (retries + 1) + retry_delay x retries <
    interval) allows with a margin, at least the scaled one and at most the shipped one. Under
    load a healthy run then does not time out, and a regression that ends in a timeout is
    measured slower than at the real settings, never faster; ``factor=1`` is the shipped
    settings exactly."""
    shipped = shipped_probe_timings(src)
    interval = parse_duration(shipped["PROBE_INTERVAL"]) / factor
    delay = parse_duration(shipped["PROBE_RETRY_DELAY"]) / factor
    retries = int(shipped["PROBE_RETRIES"])
    # A flow's cleanup runs after its timeout, within the interval: scaled too, and left
    # room for.
    cleanup = parse_duration(shipped_cleanup_timeout(src)) / factor
    shipped_timeout = parse_duration(shipped["PROBE_TIMEOUT"])
    timeout = min(shipped_timeout, max(shipped_timeout / factor,
                                       0.8 * (interval - delay * retries) / (retries + 1)
                                       - cleanup))
    # A stream's first-event budget keeps its share of the timeout, so that a stream held
    # back longer than it and released within the timeout is still told from a stall.
    first = parse_duration(shipped_default("PROBE_FIRST_EVENT_WITHIN", src))
    first = min(first, max(first / factor, timeout * first / shipped_timeout))
    return {"PROBE_INTERVAL": f"{interval:.3f}s", "PROBE_RETRY_DELAY": f"{delay:.3f}s",
            "PROBE_RETRIES": str(retries), "PROBE_TIMEOUT": f"{timeout:.3f}s",
            "PROBE_CLEANUP_TIMEOUT": f"{cleanup:.3f}s",
            "PROBE_FIRST_EVENT_WITHIN": f"{first:.3f}s"}


def stream_hold(env: dict[str, str]) -> float:
    """How long the simulator's ``stream_buffered`` holds a stream for probes run with
    ``env`` (:func:`scaled_probe_env`): a third longer than the first-event budget (4 s at
    the shipped 3 s, the simulator's own default), and never past the middle of what is
    left of the timeout, so that the probe sees the burst and judges it buffered."""
    first = float(env["PROBE_FIRST_EVENT_WITHIN"].removesuffix("s"))
    timeout = float(env["PROBE_TIMEOUT"].removesuffix("s"))
    return round(min(first * 4 / 3, (first + timeout) / 2), 3)


def shipped_cleanup_timeout(src: Path = SHIPPED_PROBES) -> str:
    """The default of ``${PROBE_CLEANUP_TIMEOUT:-...}``, the shipped flow's cleanup bound."""
    return shipped_default("PROBE_CLEANUP_TIMEOUT", src)


def shipped_default(variable: str, src: Path = SHIPPED_PROBES) -> str:
    """The default of ``${VARIABLE:-...}`` in the shipped probes.yaml (one per variable)."""
    found = set(re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", src.read_text(encoding="utf-8")))
    assert len(found) == 1, f"the shipped default of {variable}: {found}"
    return found.pop()


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers 200 (fails the test with the process output otherwise)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.1)
    output = ""
    if proc is not None and proc.stdout is not None and proc.poll() is not None:
        output = proc.stdout.read().decode(errors="replace")
    pytest.fail(f"{url} did not become ready: {last}\n{output}", pytrace=False)


@contextlib.contextmanager
def _process(args: list[str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, proc=proc)
        yield proc
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def running_alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """Alertmanager on loopback (clustering off); yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    storage = workdir / "alertmanager-data"
    storage.mkdir(parents=True, exist_ok=True)
    args = [
        binary("alertmanager"),
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with _process(args, f"{base}/-/ready"):
        yield base


@contextlib.contextmanager
def running_prometheus(config: Path, workdir: Path, *flags: str) -> Iterator[str]:
    """Prometheus on loopback with its own TSDB in ``workdir``; yields its base URL.
    ``flags`` are added to its command line (``--enable-feature=exemplar-storage``)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    storage = workdir / "prometheus-data"
    storage.mkdir(parents=True, exist_ok=True)
    args = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        *flags,
    ]
    with _process(args, f"{base}/-/ready"):
        yield base


class EventSink:
    """A loopback HTTP server that records every JSON POST: a stand-in for PagerDuty's
    Events API v2 (answers 202 like it) and for the ticket webhook.

    ``url`` is the base URL; ``events`` the decoded bodies with their ``_path``,
    ``_received`` (``time.monotonic()`` when the request arrived, to measure delays) and
    ``_received_wall`` (``time.time()``).
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                body["_path"] = self.path
                body["_received"] = time.monotonic()
                body["_received_wall"] = time.time()  # to compare with a run's started_at
                with sink._lock:
                    sink.events.append(body)
                reply = json.dumps(
                    {"status": "success", "message": "Event processed",
                     "dedup_key": body.get("dedup_key", "")}
                ).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EventSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 20.0,
        *,
        start: int = 0,
    ) -> dict[str, Any]:
        """The first recorded event matching ``predicate`` (waits for it); ``start`` skips
        the events recorded before that index (``len(sink.snapshot())`` at some moment)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.snapshot()[start:]:
                if predicate(event):
                    return event
            time.sleep(0.05)
        pytest.fail(
            f"no matching event within {timeout}s; got "
            f"{json.dumps(self.snapshot()[start:], indent=1)}",
            pytrace=False,
        )


def post_alerts(alertmanager: str, alerts: list[dict[str, Any]]) -> None:
    """POST alerts to Alertmanager's API v2 (as Prometheus does)."""
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


# --------------------------------------------------------------------------- reading

def query(prometheus: str, promql: str, **params: str) -> dict[str, Any]:
    """The JSON answer of /api/v1/query (or /api/v1/query_range with ``start``, ``end`` and
    ``step``); errors included: a 400 carries the parse error."""
    path = "query_range" if "step" in params else "query"
    url = f"{prometheus}/api/v1/{path}?" + urllib.parse.urlencode({"query": promql, **params})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read() or b"{}")
        answer.setdefault("status", f"http {exc.code}")
    return answer


def vector(prometheus: str, promql: str, **params: str) -> list[dict[str, Any]]:
    answer = query(prometheus, promql, **params)
    assert answer.get("status") == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               detail: Callable[[], object] = lambda: "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} (waited {timeout:.0f}s) {detail()}", pytrace=False)
        time.sleep(0.2)


@dataclass(frozen=True)
class FailedRun:
    started_at: float  # wall clock: the start of its first attempt
    attempts_seconds: float  # how long its attempts themselves took (the target's answers)


def failed_runs(probe: dict[str, Any], since: float, until: float
                ) -> Iterator[tuple[float, float]]:
    """The runs of one probe of an ``/api/v1/results`` payload whose first attempt failed
    between ``since`` and ``until`` (wall clock): each one's start and how long its attempts
    took, its retries included."""
    runs = probe["runs"]  # newest first: a run's later attempts come before it
    for i, run_ in enumerate(runs):
        if (run_["attempt"] == 1 and not run_["success"] and run_["started_at"] <= until
                and since <= run_["started_at"] + run_["duration_seconds"]):
            took, j = run_["duration_seconds"], i - 1
            while j >= 0 and runs[j]["attempt"] == runs[j + 1]["attempt"] + 1:
                took += runs[j]["duration_seconds"]  # its retries, oldest first
                j -= 1
            yield run_["started_at"], took


def first_failing_run(payloads: Iterable[dict[str, Any]], since: float,
                      until: float) -> FailedRun:
    """The first run that failed after ``since`` (wall clock) in the given
    ``/api/v1/results`` payloads (one per daemon): a run whose first attempt failed. The
    earliest is taken, whichever probe and daemon triggered the page, so that a delay
    measured from it is never shorter than the real one."""
    found = [FailedRun(started, took) for payload in payloads for probe in payload["probes"]
             for started, took in failed_runs(probe, since, until)]
    assert found, "no failed run found in the daemons' history"
    return min(found, key=lambda r: r.started_at)
