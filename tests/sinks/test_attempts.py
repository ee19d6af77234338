"""What the sinks make of a run's attempts (Result.attempt, Result.final): only the final
attempt sets the gauges and the status page's state, every attempt is counted and kept."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config, load_text
from monitor.outcomes import Outcome
from monitor.result import Evidence, Result
from monitor.sinks import default_sinks
from monitor.sinks.metrics import Surfacer
from monitor.web.statuspage import render_probe

CONFIG = """\
defaults: {interval: 60s, timeout: 10s, retries: 2, retry_delay: 5s}
probes:
  - name: ws
    websocket: {url: 'ws://127.0.0.1:9/api/v1/websocket'}
"""


def config() -> Config:
    return load_text(CONFIG, env={})


def attempt(n: int, final: bool, outcome: Outcome, at: float) -> Result:
    return Result(probe="ws", type="websocket", target="ws://127.0.0.1:9/api/v1/websocket",
                  outcome=outcome, started_at=at, duration_seconds=0.01,
                  status_code=403 if outcome is Outcome.HANDSHAKE_REJECTED else 101,
                  upgraded=outcome is Outcome.SUCCESS,
                  evidence=Evidence(detail=f"attempt {n} detail"), attempt=n, final=final)


def metrics(s: Surfacer) -> dict[tuple[str, str], float]:
    """(sample name, outcome label) -> value."""
    return {(x.name, x.labels.get("outcome", "")): x.value
            for fam in text_string_to_metric_families(s.render().decode())
            for x in fam.samples}


def test_a_retried_attempt_is_counted_but_sets_no_gauge() -> None:
    sinks = default_sinks()
    sinks.configure(config())
    sinks.observe(attempt(1, True, Outcome.SUCCESS, 1000.0))
    sinks.observe(attempt(1, False, Outcome.HANDSHAKE_REJECTED, 1060.0))
    m = metrics(sinks.metrics)
    assert m[("probe_success", "")] == 1.0  # still the last run's: dashboards do not flap
    assert m[("probe_websocket_status_code", "")] == 101.0
    assert m[("synthmon_probe_outcome", "success")] == 1.0
    assert m[("synthmon_probe_runs_total", "handshake_rejected")] == 1.0  # every attempt
    assert ("synthmon_probe_retries_total", "handshake_rejected") not in m  # a first try
    assert sinks.history.latest()["ws"] is not None
    assert sinks.history.latest()["ws"].success  # type: ignore[union-attr]

    sinks.observe(attempt(2, False, Outcome.HANDSHAKE_REJECTED, 1065.0))
    sinks.observe(attempt(3, True, Outcome.HANDSHAKE_REJECTED, 1070.0))
    m = metrics(sinks.metrics)
    assert m[("probe_success", "")] == 0.0  # confirmed: now it counts
    assert m[("probe_websocket_status_code", "")] == 403.0
    assert m[("synthmon_probe_outcome", "handshake_rejected")] == 1.0
    assert m[("synthmon_probe_runs_total", "handshake_rejected")] == 3.0
    assert m[("synthmon_probe_retries_total", "handshake_rejected")] == 2.0
    assert m[("synthmon_probe_duration_seconds_count", "")] == 2.0  # runs, not attempts

    # The history keeps every attempt; the probe's state is the final one, failing since
    # the start of the run's first attempt.
    runs = sinks.history.runs("ws")
    assert [(r.attempt, r.final) for r in runs] == [(3, True), (2, False), (1, False), (1, True)]
    last = sinks.history.latest()["ws"]
    assert last is not None and last.attempt == 3 and not last.success
    assert sinks.history.since("ws") == 1060.0


def test_a_blip_healed_by_the_retry_counts_as_a_healed_retry() -> None:
    sinks = default_sinks()
    sinks.configure(config())
    sinks.observe(attempt(1, False, Outcome.HANDSHAKE_REJECTED, 1000.0))
    sinks.observe(attempt(2, True, Outcome.SUCCESS, 1005.0))
    m = metrics(sinks.metrics)
    assert m[("probe_success", "")] == 1.0
    assert m[("synthmon_probe_retries_total", "success")] == 1.0
    assert m[("synthmon_probe_runs_total", "handshake_rejected")] == 1.0
    assert m[("synthmon_probe_runs_total", "success")] == 1.0
    assert sinks.history.since("ws") == 1000.0
    # a later success is slimmed by the history and keeps which attempt it was
    sinks.observe(attempt(1, True, Outcome.SUCCESS, 1060.0))
    assert [(r.attempt, r.final) for r in sinks.history.runs("ws")] == [
        (1, True), (2, True), (1, False)]


def test_the_status_page_lists_the_attempts_of_a_run() -> None:
    sinks = default_sinks()
    sinks.configure(config())
    sinks.observe(attempt(1, False, Outcome.HANDSHAKE_REJECTED, 1000.0))
    sinks.observe(attempt(2, True, Outcome.HANDSHAKE_REJECTED, 1005.0))
    page = render_probe(sinks.history, "ws")
    assert 'data-attempt="1" data-final="false"' in page
    assert 'data-attempt="2" data-final="true"' in page
    assert "attempt 1 · retried" in page and "attempt 2" in page
    assert "Last 1 runs" in page  # one run, two attempts
