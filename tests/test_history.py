"""The run history: newest first, bounded per probe and in total, old successes slimmed."""

from __future__ import annotations

from monitor.config import Config, load_text
from monitor.history import DEFAULT_DEPTH, MIN_DEPTH, History
from monitor.outcomes import Outcome
from monitor.result import Evidence, Result


def config(n: int) -> Config:
    body = "".join(f"  - name: p{i}\n    http: {{url: 'http://127.0.0.1:1/'}}\n" for i in range(n))
    return load_text(f"probes:\n{body}", env={})


def run(i: int, outcome: Outcome = Outcome.SUCCESS) -> Result:
    return Result(probe="p0", type="http", target="t", outcome=outcome, started_at=float(i),
                  duration_seconds=0.01, status_code=200, phases=(("connect", 0.001),),
                  evidence=Evidence(detail=f"run {i}", status_code=200,
                                    headers=(("Server", "x" * 500),), body_excerpt="{}"))


def test_newest_first_and_depth_bounded() -> None:
    h = History()
    h.configure(config(1))
    for i in range(DEFAULT_DEPTH + 5):
        h.observe(run(i))
    runs = h.runs("p0")
    assert len(runs) == DEFAULT_DEPTH
    assert [r.started_at for r in runs[:2]] == [DEFAULT_DEPTH + 4, DEFAULT_DEPTH + 3]


def test_only_the_newest_success_keeps_full_evidence_failures_keep_theirs() -> None:
    h = History()
    h.configure(config(1))
    h.observe(run(0))
    h.observe(run(1, Outcome.TIMEOUT))
    h.observe(run(2))
    h.observe(run(3))
    newest, older_ok, failed, oldest_ok = h.runs("p0")
    assert newest.evidence.headers and newest.phases
    assert not older_ok.evidence.headers and not older_ok.phases
    assert older_ok.evidence.detail == "run 2" and older_ok.status_code == 200
    assert failed.evidence.headers and failed.evidence.body_excerpt == "{}"
    assert not oldest_ok.evidence.headers
    assert h.since("p0") == 2.0


def test_total_runs_bounded_with_many_probes() -> None:
    h = History()
    h.configure(config(5000))
    assert h.depth == 20
    h.configure(config(20_000))
    assert h.depth == MIN_DEPTH
    h.configure(config(3))
    assert h.depth == DEFAULT_DEPTH
