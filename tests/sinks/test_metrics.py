"""The Prometheus surfacer: every contract metric, parsed back with prometheus-client."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor.config import Config, load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.result import Evidence, Result, StepTiming
from monitor.sinks.metrics import (
    CHUNK_LINES,
    CONTENT_TYPE,
    Counts,
    Snapshot,
    Surfacer,
    _counted,
    _items,
    format_snapshot,
    iter_exposition,
)
from tests.support.servers import serving_daemon

CONFIG = """\
defaults: {labels: {environment: staging}}
probes:
  - name: api
    http: {url: "http://user:pw@127.0.0.1:8000/api/health?token=abc"}
  - name: ws
    labels: {ws_route: primary}
    websocket: {url: "ws://127.0.0.1:8000/api/v1/websocket"}
"""


def config(text: str = CONFIG) -> Config:
    return load_text(text, env={})


def samples(s: Surfacer) -> list[Sample]:
    text = s.render().decode()
    return [x for fam in text_string_to_metric_families(text) for x in fam.samples]


def value(s: Surfacer, name: str, **labels: str) -> float:
    found = [x.value for x in samples(s)
             if x.name == name and all(x.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def result(probe: str, outcome: Outcome, **kw: object) -> Result:
    base: dict[str, object] = dict(probe=probe, type="http" if probe == "api" else "websocket",
                                   target="x", outcome=outcome, started_at=time.time(),
                                   duration_seconds=0.042)
    base.update(kw)
    return Result(**base)  # type: ignore[arg-type]


def test_labels_target_without_credentials_or_query_and_static_labels() -> None:
    s = Surfacer()
    s.configure(config())
    s.observe(result("api", Outcome.SUCCESS, status_code=200,
                     phases=(("resolve", 0.001), ("connect", 0.002))))
    got = [x for x in samples(s) if x.name == "probe_success"]
    assert got[0].labels == {"probe": "api", "type": "http",
                             "target": "http://127.0.0.1:8000/api/health",
                             "environment": "staging", "ws_route": ""}
    assert value(s, "probe_http_status_code", probe="api") == 200
    assert value(s, "probe_http_duration_seconds", probe="api", phase="connect") == 0.002
    assert value(s, "probe_http_duration_seconds", probe="api", phase="transfer") == 0.0


def test_websocket_gauges_outcome_and_counters() -> None:
    s = Surfacer(location="eu-west")
    s.configure(config())
    s.observe(result("ws", Outcome.SUCCESS, status_code=101, upgraded=True,
                     steps=(StepTiming(0, "welcome", 0.003),)))
    s.observe(result("ws", Outcome.HANDSHAKE_REJECTED, status_code=403,
                     evidence=Evidence(detail="403")))
    assert value(s, "probe_success", probe="ws", location="eu-west") == 0
    assert value(s, "probe_websocket_status_code", probe="ws") == 403
    assert value(s, "probe_websocket_connection_upgraded", probe="ws") == 0
    assert value(s, "probe_websocket_close_code", probe="ws") == 0
    assert value(s, "synthmon_probe_outcome", probe="ws", outcome="handshake_rejected") == 1
    assert value(s, "synthmon_probe_outcome", probe="ws", outcome="success") == 0
    assert value(s, "synthmon_probe_runs_total", probe="ws", outcome="success") == 1
    assert value(s, "synthmon_probe_runs_total", probe="ws", outcome="handshake_rejected") == 1
    assert value(s, "synthmon_probe_duration_seconds_count", probe="ws") == 2
    assert value(s, "synthmon_probe_duration_seconds_bucket", probe="ws", le="0.05") == 2
    assert value(s, "synthmon_probe_duration_seconds_bucket", probe="ws", le="0.025") == 0
    assert value(s, "synthmon_probe_step_duration_seconds_count", probe="ws", step="welcome") == 1
    assert value(s, "synthmon_probe_last_success_timestamp_seconds", probe="ws") > 0
    assert value(s, "synthmon_probe_last_run_timestamp_seconds", probe="ws") > 0
    assert value(s, "synthmon_build_info", location="eu-west") == 1


def test_daemon_metrics() -> None:
    s = Surfacer()
    s.configure(config())
    s.reloaded(True)
    s.observe_lag(0.003)
    s.skip("overlap")
    assert value(s, "synthmon_config_last_reload_successful") == 1
    assert value(s, "synthmon_config_last_reload_success_timestamp_seconds") > 0
    assert value(s, "synthmon_probes_configured") == 2
    assert value(s, "synthmon_scheduler_lag_seconds_count") == 1
    assert value(s, "synthmon_probe_skipped_total", reason="overlap") == 1
    assert value(s, "synthmon_probe_skipped_total", reason="misfire") == 0
    s.reloaded(False)
    assert value(s, "synthmon_config_last_reload_successful") == 0
    assert not [x for x in samples(s) if x.name == "synthmon_shards"]  # not sharded


def test_a_shard_says_which_of_how_many() -> None:
    s = Surfacer(location="eu-west", shard=(1, 3))
    s.configure(config())
    (shards,) = [x for x in samples(s) if x.name == "synthmon_shards"]
    assert shards.labels == {"shard": "1", "location": "eu-west"}
    assert shards.value == 3
    s = Surfacer(shard=(0, 1))
    assert value(s, "synthmon_shards", shard="0") == 1


def test_reload_drops_removed_probes_and_keeps_counters_of_others() -> None:
    s = Surfacer()
    s.configure(config())
    s.observe(result("api", Outcome.SUCCESS))
    s.observe(result("ws", Outcome.SUCCESS))
    s.configure(config(CONFIG.split("  - name: ws")[0]))
    assert not [x for x in samples(s) if x.labels.get("probe") == "ws"]
    assert value(s, "synthmon_probe_runs_total", probe="api", outcome="success") == 1
    s.observe(result("ws", Outcome.SUCCESS))  # a run that finished after its removal
    assert not [x for x in samples(s) if x.labels.get("probe") == "ws"]


def test_families_have_their_types_and_every_sample_parses() -> None:
    s = Surfacer(location='eu "west"\\1')  # a label value that needs escaping
    s.configure(config())
    s.observe(result("ws", Outcome.SUCCESS, status_code=101, upgraded=True,
                     steps=(StepTiming(0, 'we"lcome', 0.003),)))
    s.observe(result("api", Outcome.TIMEOUT))
    s.observe_lag(0.004)
    families = {f.name: f for f in text_string_to_metric_families(s.render().decode())}
    assert families["synthmon_probe_runs"].type == "counter"
    assert families["synthmon_probe_skipped"].type == "counter"
    assert families["synthmon_probe_duration_seconds"].type == "histogram"
    assert families["synthmon_probe_step_duration_seconds"].type == "histogram"
    assert families["synthmon_scheduler_lag_seconds"].type == "histogram"
    assert families["probe_success"].type == "gauge"
    steps = families["synthmon_probe_step_duration_seconds"].samples
    assert {x.labels["step"] for x in steps} == {'we"lcome'}
    assert all(x.labels["location"] == 'eu "west"\\1' for x in steps)
    buckets = [x for x in families["synthmon_scheduler_lag_seconds"].samples
               if x.name.endswith("_bucket")]
    assert [x.value for x in buckets][-1] == 1 and buckets[-1].labels["le"] == "+Inf"


def many(n: int) -> Config:
    body = "".join(f"  - name: p{i}\n    interval: 1h\n    http: {{url: 'http://127.0.0.1:1/{i}'}}\n"
                   for i in range(n))
    return config(f"probes:\n{body}")


def test_exposition_in_pieces_is_the_whole_text_cut_at_line_ends() -> None:
    s = Surfacer()
    s.configure(many(50))
    for i in range(50):
        s.observe(result(f"p{i}", Outcome.SUCCESS if i % 2 else Outcome.TIMEOUT,
                         phases=(("connect", 0.001),)))
    pieces = list(iter_exposition(s.snapshot(), chunk_lines=40))
    assert len(pieces) > 10
    assert all(p.endswith(b"\n") for p in pieces)
    assert b"".join(pieces) == s.render()


async def test_a_large_scrape_is_streamed_and_parses_whole(tmp_path: Path) -> None:
    n = 200  # about 30 lines a probe: several pieces of CHUNK_LINES
    path = tmp_path / "probes.yaml"
    path.write_text("probes:\n" + "".join(
        f"  - name: p{i}\n    interval: 1h\n    http: {{url: 'http://127.0.0.1:1/{i}'}}\n"
        for i in range(n)))
    daemon = Daemon(DaemonOptions(str(path)))
    async with serving_daemon(daemon) as base:
        for i in range(n):
            daemon.record(result(f"p{i}", Outcome.SUCCESS, target=f"http://127.0.0.1:1/{i}"))
        async with aiohttp.ClientSession() as session, \
                session.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == CONTENT_TYPE
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            text = await resp.text()
        # The handler let go of the series it wrote out (runs change them in place again).
        assert {x.held for x in daemon.surfacer._series.values()} == {0}
    assert text.count("\n") > CHUNK_LINES
    probes = {x.labels["probe"] for fam in text_string_to_metric_families(text)
              for x in fam.samples if x.name == "probe_success"}
    assert probes == {f"p{i}" for i in range(n)}


def test_retry_step_and_event_maps_are_made_at_their_first_entry() -> None:
    """A probe that never retried and has no steps or events keeps no map for them (issue
    24's memory); the first retry, step or event makes it, and the exposition says the same
    as ever before and after a reload."""
    s = Surfacer()
    s.configure(config())
    s.observe(result("api", Outcome.SUCCESS))
    s.observe(result("ws", Outcome.SUCCESS))
    series = s._series
    assert all(x.retries is None and x.steps is None and x.events is None
               for x in series.values())
    names = {x.name for x in samples(s)}
    assert not names & {"synthmon_probe_retries_total",
                        "synthmon_probe_step_duration_seconds_count",
                        "synthmon_probe_event_seconds_count"}
    s.observe(result("ws", Outcome.SUCCESS, attempt=2,
                     steps=(StepTiming(0, "welcome", 0.003),)))
    assert series["api"].retries is None and series["api"].steps is None
    for _ in range(2):  # each scrape renders from its own snapshot
        assert value(s, "synthmon_probe_retries_total", probe="ws", outcome="success") == 1
        assert value(s, "synthmon_probe_step_duration_seconds_count", probe="ws",
                     step="welcome") == 1
    s.configure(config())
    assert value(s, "synthmon_probe_retries_total", probe="ws", outcome="success") == 1
    assert value(s, "synthmon_probe_step_duration_seconds_count", probe="ws",
                 step="welcome") == 1
    assert series is not s._series and s._series["api"].events is None


def test_a_snapshot_in_steps_is_the_snapshot_and_copies_each_probe_whole() -> None:
    """The /metrics handler copies the series a few hundred probes at a time, letting the
    event loop run between two steps: the same text when nothing ran meanwhile; a run
    recorded between two steps is in the copy of a probe not yet copied and not in one
    already copied, and either way a probe's series agree (runs, histogram count, last
    outcome)."""
    s = Surfacer()
    s.configure(many(10))
    for i in range(10):
        s.observe(result(f"p{i}", Outcome.SUCCESS))
    steps = s.snapshot_in_steps(4)
    taken = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            whole: Snapshot = done.value
            break
        taken += 1
    assert taken == 2  # 4 + 4 + 2 probes: two turns of the loop in between
    assert format_snapshot(whole) == s.render()

    steps = s.snapshot_in_steps(4)
    next(steps)  # p0-p3 copied
    for i in (1, 7):
        s.observe(result(f"p{i}", Outcome.TIMEOUT))
    s.configure(many(3))  # a reload meanwhile: the scrape keeps the probes it began with
    with pytest.raises(StopIteration) as stopped:
        while True:
            next(steps)
    snap: Snapshot = stopped.value.value
    text = format_snapshot(snap).decode()
    got = {(x.name, x.labels.get("probe"), x.labels.get("outcome", "")): x.value
           for fam in text_string_to_metric_families(text) for x in fam.samples}
    assert got[("probe_success", "p1", "")] == 1.0
    assert ("synthmon_probe_runs_total", "p1", "timeout") not in got
    assert got[("probe_success", "p7", "")] == 0.0
    assert got[("synthmon_probe_runs_total", "p7", "timeout")] == 1.0
    assert got[("synthmon_probe_duration_seconds_count", "p7", "")] == 2.0
    assert {p for (n, p, _) in got if n == "probe_success"} == {f"p{i}" for i in range(10)}
    assert snap.configured == 10


def test_a_scrape_holds_the_series_it_took_and_copies_only_those_changed_meanwhile() -> None:
    """A snapshot takes the series themselves (a copy of each every scrape was 7 MiB at
    10,000 probes, issue 24): a run or a reload while a scrape is written out changes a
    copy, which becomes the live series, and the text is the one of the moment each was
    taken, to the last piece; a series nobody changed is never copied, and once the scrape
    is released runs change the series in place again."""
    s = Surfacer()
    s.configure(many(10))
    for i in range(10):
        s.observe(result(f"p{i}", Outcome.SUCCESS))
    before = s.render()
    live = dict(s._series)
    snap = s.snapshot()
    pieces = iter_exposition(snap, chunk_lines=40)
    text = [next(pieces)]
    s.observe(result("p1", Outcome.TIMEOUT))  # mid-scrape: a run...
    s.configure(config("probes:\n" + "".join(
                           f"  - {{name: p{i}, labels: {{team: t}}, interval: 1h, "
                           f"http: {{url: 'http://127.0.0.1:1/{i}'}}}}\n" for i in range(10))))
    s.observe(result("p2", Outcome.TIMEOUT))  # ... a reload, and a run after it
    text.extend(pieces)
    assert b"".join(text) == before
    changed = {k for k in live if s._series[k] is not live[k]}
    assert changed == {f"p{i}" for i in range(10)}  # the reload relabelled every one
    assert all(x is live[k] for k, x in zip(live, snap.series, strict=True))
    s.release(snap)
    assert value(s, "synthmon_probe_runs_total", probe="p1", outcome="timeout", team="t") == 1
    held = dict(s._series)
    s.observe(result("p3", Outcome.TIMEOUT))  # released: changed in place
    assert s._series == held and all(s._series[k] is held[k] for k in held)


def test_a_scrape_begun_before_a_change_takes_the_changed_series_and_lets_go_if_abandoned(
        ) -> None:
    s = Surfacer()
    s.configure(many(8))
    for i in range(8):
        s.observe(result(f"p{i}", Outcome.SUCCESS))
    first = s.snapshot()  # holds every series
    steps = s.snapshot_in_steps(4)
    next(steps)  # the second scrape took p0-p3
    s.observe(result("p5", Outcome.TIMEOUT))  # copied (the first holds it), not yet taken
    s.observe(result("p1", Outcome.TIMEOUT))  # copied: both hold it
    with pytest.raises(StopIteration) as stopped:
        next(steps)
    second: Snapshot = stopped.value.value
    got = {x.labels["probe"]: x.value for fam in text_string_to_metric_families(
        format_snapshot(second).decode()) for x in fam.samples if x.name == "probe_success"}
    assert got == {**{f"p{i}": 1.0 for i in range(8)}, "p5": 0.0}
    assert second.series[5] is s._series["p5"] and first.series[5] is not s._series["p5"]
    def holds() -> dict[str, int]:
        return {k: x.held for k, x in s._series.items()}

    assert holds() == {**{f"p{i}": 2 for i in range(8)}, "p1": 0, "p5": 1}
    s.release(second)
    s.release(second)  # once only
    assert holds() == {**{f"p{i}": 1 for i in range(8)}, "p1": 0, "p5": 0}
    s.release(first)
    assert set(holds().values()) == {0}
    steps = s.snapshot_in_steps(4)
    next(steps)
    assert set(holds().values()) == {0, 1}
    steps.close()  # the scraper went away half-way: what it took is let go
    assert set(holds().values()) == {0}
    kept = s._series["p0"]
    s.observe(result("p0", Outcome.TIMEOUT))
    assert s._series["p0"] is kept


@pytest.mark.parametrize("seen", [
    (), ("success",), ("success",) * 3, ("timeout", "success", "success", "timeout"),
    ("success", "unexpected_status", "timeout", "unexpected_status", "success"),
])
def test_runs_by_outcome_count_as_a_dict_would_in_the_order_first_seen(
        seen: tuple[str, ...]) -> None:
    counts: Counts = ()
    reference: dict[Outcome, int] = {}
    for name in seen:
        counts = _counted(counts, Outcome(name))
        reference[Outcome(name)] = reference.get(Outcome(name), 0) + 1
        assert list(_items(counts)) == list(reference.items())
    s = Surfacer()
    s.configure(config())
    for name in seen:
        s.observe(result("api", Outcome(name)))
    text = s.render().decode()
    assert [line.split('outcome="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("synthmon_probe_runs_total{")] == [o.value for o in reference]
