"""The run history: newest first, bounded per probe and in total, old successes slimmed."""

from __future__ import annotations

import gc
import tracemalloc

from monitor.config import Config, load_text
from monitor.keep import Keeper
from monitor.limits import (
    EVENTS_SEEN_KEPT,
    FRAMES_KEPT,
    HISTORY_EVIDENCE_BYTES,
    TRANSCRIPT_BYTES,
    TRANSCRIPT_FRAMES,
)
from monitor.outcomes import Outcome
from monitor.probes.events import KNOWN_PATHS
from monitor.redact import Redactor
from monitor.result import Diagnosis, Evidence, Frame, FrameTypes, Result, StepTiming
from monitor.sinks.history import DEFAULT_DEPTH, MIN_DEPTH, History, evidence_bytes, slim


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


def ws_run(i: int, outcome: Outcome = Outcome.SUCCESS) -> Result:
    return Result(probe="p0", type="websocket", target="ws://127.0.0.1:1/ws", outcome=outcome,
                  started_at=1000.0 + i, duration_seconds=0.25 + i / 1000, status_code=101,
                  close_code=1000, upgraded=True, phases=(("handshake", 0.01),),
                  steps=(StepTiming(0, "welcome", 0.001 * i), StepTiming(1, "events", 0.2 + i)),
                  cert_expiry=2e9,
                  evidence=Evidence(detail="upgraded (subprotocol jwt-auth); 2 steps passed",
                                    status_code=101, headers=(("Upgrade", "websocket"),),
                                    content_type=None, close_code=1000, close_reason="bye",
                                    step=1, step_name="events", last_message="{}",
                                    subprotocol="jwt-auth", events_seen=("a", "b")))


def test_an_older_success_keeps_what_the_page_and_api_show_of_it() -> None:
    h = History()
    h.configure(config(1))
    for i in range(5):
        h.observe(ws_run(i))
    runs = h.runs("p0")
    assert runs[0] == ws_run(4)
    for i, got in zip(range(3, -1, -1), runs[1:], strict=True):
        assert got == slim(ws_run(i))  # exactly what was kept before runs were packed
        assert got.started_at == 1000.0 + i and got.duration_seconds == 0.25 + i / 1000
        assert [s.duration_seconds for s in got.steps] == [0.001 * i, 0.2 + i]
        assert got.evidence.subprotocol == "jwt-auth" and got.close_code == 1000
        assert got.cert_expiry == 2e9 and got.target == "ws://127.0.0.1:1/ws"
        assert not got.evidence.headers and not got.phases and got.evidence.step is None


def test_a_changed_answer_is_kept_per_run() -> None:
    h = History()
    h.configure(config(1))
    shapes = [("text/html", 200), ("application/json", 200), ("text/html", 204)]
    for i, (ctype, status) in enumerate([*shapes, ("text/html", 200)]):
        h.observe(Result(probe="p0", type="http", target=f"http://h/{i % 2}",
                         outcome=Outcome.SUCCESS, started_at=float(i), duration_seconds=0.1,
                         status_code=status,
                         evidence=Evidence(detail=f"HTTP {status} in {i}ms",
                                           status_code=status, content_type=ctype)))
    older = list(reversed(h.runs("p0")[1:]))
    assert [(r.evidence.content_type, r.status_code) for r in older] == shapes
    assert [r.target for r in older] == ["http://h/0", "http://h/1", "http://h/0"]
    assert [r.evidence.detail for r in older] == ["HTTP 200 in 0ms", "HTTP 200 in 1ms",
                                                  "HTTP 204 in 2ms"]


def test_fewer_runs_kept_after_a_reload_are_the_newest_in_order() -> None:
    h = History()
    h.configure(config(1))
    for i in range(30):
        h.observe(run(i, Outcome.TIMEOUT if i % 7 == 0 else Outcome.SUCCESS))
    before = h.runs("p0")
    h.configure(config(20_000))  # depth 10
    assert h.runs("p0") == before[:MIN_DEPTH]
    h.observe(run(30))
    assert [r.started_at for r in h.runs("p0")] == [30.0, *(float(i) for i in range(29, 20, -1))]
    h.configure(config(1))  # depth 100 again: what was kept stays
    assert len(h.runs("p0")) == MIN_DEPTH


def test_a_full_history_of_older_successes_costs_tens_of_bytes_a_run() -> None:
    probes, depth = 200, DEFAULT_DEPTH
    cfg = config(probes)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        h = History()
        h.configure(cfg)
        assert h.depth == depth
        for i in range(depth):
            for p in range(probes):
                h.observe(Result(probe=f"p{p}", type="http", target=f"http://127.0.0.1:1/{p}",
                                 outcome=Outcome.SUCCESS, started_at=1e9 + i,
                                 duration_seconds=0.001 * (i % 7), status_code=200,
                                 phases=(("connect", 0.001),),
                                 evidence=Evidence(detail=f"HTTP 200 in {i % 7}ms",
                                                   status_code=200, content_type="text/html",
                                                   headers=(("Server", "nginx"),)),
                                 trace_id=f"{i:016x}{p:016x}", span_id=f"{i + 1:016x}"))
        gc.collect()
        per_run = (tracemalloc.get_traced_memory()[0] - base) / (probes * depth)
    finally:
        tracemalloc.stop()
    # Each older success was a slimmed Result of ~850 bytes: 85 MB for the 100,000 runs
    # a full history holds; the newest run of each probe, kept whole, is counted in too.
    # The run's trace and span ids (unique per run) add 24 bytes.
    assert per_run < 85, per_run


def _variations() -> list[Result]:
    """A run and runs differing from it in one field each: every field of the Result, of
    the evidence the shape keeps and of the steps."""
    from dataclasses import fields, replace
    from typing import Any

    def changed(r: Result, **kw: Any) -> Result:
        return replace(r, **kw)

    base = Result(probe="p0", type="websocket", target="t", outcome=Outcome.SUCCESS,
                  started_at=1.0, duration_seconds=0.5, status_code=101, upgraded=True,
                  steps=(StepTiming(0, "welcome", 0.1), StepTiming(1, "events", 0.2)),
                  evidence=Evidence(detail="ok", status_code=101, content_type="a/b",
                                    subprotocol="jwt-auth", headers=(("A", "b"),)),
                  trace_id="1" * 32, span_id="2" * 16, measures=(("m", 1.0),))
    other = {str: "other", int: 7, float: 9.5, bool: False}
    out = [base]
    for f in fields(Result):
        value = getattr(base, f.name)
        if f.name == "outcome":
            out.append(replace(base, outcome=Outcome.SLOW))
        elif f.name == "evidence":
            for name in ("detail", "status_code", "content_type", "close_code", "subprotocol",
                         "headers", "body_excerpt", "hint"):
                new: Any = (("X", "y"),) if name == "headers" else other[
                    str if name not in ("status_code", "close_code") else int]
                out.append(changed(base, evidence=replace(base.evidence, **{name: new})))
        elif f.name == "steps":
            out += [replace(base, steps=base.steps[:1]), replace(base, steps=()),
                    replace(base, steps=(StepTiming(0, "welcome", 0.3), base.steps[1])),
                    replace(base, steps=(StepTiming(0, "hello", 0.1), base.steps[1])),
                    replace(base, steps=(StepTiming(5, "welcome", 0.1), base.steps[1]))]
        elif isinstance(value, tuple):
            out.append(changed(base, **{f.name: (("x", 1.0),) if f.name != "events" else ()}))
        elif type(value) in other:
            out.append(changed(base, **{f.name: other[type(value)]}))
        else:  # None
            out.append(changed(base, **{f.name: "v" if f.name in ("variant", "trace_id",
                                                                  "span_id") else 3}))
    return out


def test_telling_a_shape_without_making_it_agrees_with_making_it() -> None:
    """The history reuses a probe's shape when a run looks like the last: ``_has_shape``
    must say exactly what comparing a made shape says, for a run differing in any field."""
    from monitor.sinks.history import _has_shape, _shape

    runs = _variations()
    assert len(runs) > 30
    for a in runs:
        shape = _shape(a)
        for b in runs:
            assert _has_shape(b, shape) == (_shape(b) == shape), (a, b)
        assert not _has_shape(a, None)


def test_older_successes_come_back_as_they_were_kept() -> None:
    """Runs that look alike share a shape and runs that differ get theirs: rebuilt, every
    older success equals its slimmed self with the detail and times it had."""
    from dataclasses import replace

    h = History()
    h.configure(config(1))
    runs = [replace(r, probe="p0", started_at=float(i), trace_id=f"{i + 1:032x}",
                    span_id=f"{i + 1:016x}")
            for i, r in enumerate(_variations() * 2) if r.variant is None]
    for r in runs:
        h.observe(r)
    kept = list(reversed(h.runs("p0")))
    assert len(kept) == len(runs)
    for seen, r in zip(kept[:-1], runs[:-1], strict=True):
        expect = slim(r) if r.success else r
        assert seen == replace(expect, phases=(), transcript=(), transcript_omitted=0,
                               events=()) if r.success else seen == expect, (seen, expect)


def hostile_run(i: int) -> Result:
    """A failed run whose every piece of evidence is as large as the keeper lets it be: what
    a target flooding headers, frames and types makes a run keep."""
    keep = Keeper(Redactor())
    headers, omitted = keep.headers([(f"X-Filler-{n}", "v" * 8000) for n in range(100)])
    types = [(path, keep.type_name(f"{path}-{i}-" + "t" * 200)) for path in KNOWN_PATHS]
    return Result(
        probe="p0", type="websocket", target="ws://t/ws", outcome=Outcome.MESSAGE_TIMEOUT,
        started_at=float(i), duration_seconds=3.0, status_code=101, upgraded=True,
        transcript=tuple(Frame("received", float(n), "text", 60_000,
                               keep.excerpt("f" * 60_000, TRANSCRIPT_BYTES) or keep.words(""))
                         for n in range(TRANSCRIPT_FRAMES)),
        transcript_omitted=100_000,
        evidence=Evidence(
            detail=keep.words("d" * 100_000), hint=keep.optional_words("h" * 100_000),
            status_code=101, headers=headers, headers_omitted=omitted,
            body_excerpt=keep.excerpt(b"b" * 1_000_000),
            last_message=keep.excerpt("m" * 1_000_000),
            events_seen=tuple(keep.type_name("e" * 60_000) for _ in range(EVENTS_SEEN_KEPT)),
            events_seen_omitted=100_000,
            frames_seen=tuple(FrameTypes(float(n), tuple(types)) for n in range(FRAMES_KEPT)),
            frames_seen_omitted=100_000, close_code=1006, close_reason=keep.text("r" * 500),
            step=1, step_name="events",
            diagnosis=Diagnosis(200, keep.text("c" * 500), keep.excerpt("g" * 100_000),
                                keep.words("w" * 100_000), None)))


def test_a_hostile_probes_history_keeps_a_bounded_amount_of_evidence() -> None:
    """A hundred failed runs, each with all the evidence a run can keep (~100 KB), keep
    HISTORY_EVIDENCE_BYTES of it besides the newest run's; the older ones keep their
    outcome, detail, hint and codes, marked trimmed."""
    h = History()
    h.configure(config(1))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(DEFAULT_DEPTH):
            h.observe(hostile_run(i))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    runs = h.runs("p0")
    assert len(runs) == DEFAULT_DEPTH
    newest, *older = runs
    one = evidence_bytes(newest)
    assert one > 50_000  # the worst case really is large: the bound is not vacuous
    assert not newest.evidence.trimmed and newest.transcript and newest.evidence.headers
    total = sum(evidence_bytes(r) for r in runs)
    assert total <= HISTORY_EVIDENCE_BYTES + one, total
    full = [r for r in older if not r.evidence.trimmed]
    assert 3 <= len(full) <= HISTORY_EVIDENCE_BYTES // one, len(full)
    assert full == older[:len(full)]  # the newest kept whole, the oldest trimmed
    oldest = runs[-1]
    assert oldest.evidence.trimmed and not oldest.evidence.headers and not oldest.transcript
    assert oldest.evidence.detail == newest.evidence.detail and oldest.evidence.hint
    assert oldest.evidence.close_code == 1006 and oldest.evidence.diagnosis is not None
    # What the history holds for it, objects and all: a few MB, not 100 x 100 KB (nor, as
    # before each run was bounded, 100 x 800 KB of headers alone).
    assert held < 4 * HISTORY_EVIDENCE_BYTES, held


def test_ordinary_failures_all_keep_their_evidence() -> None:
    h = History()
    h.configure(config(1))
    for i in range(DEFAULT_DEPTH):
        h.observe(run(i, Outcome.UNEXPECTED_STATUS))
    runs = h.runs("p0")
    assert len(runs) == DEFAULT_DEPTH and not any(r.evidence.trimmed for r in runs)
    assert all(r.evidence.headers and r.evidence.body_excerpt for r in runs)


def test_probes_answered_alike_share_their_shapes_evidence_and_read_back_their_own() -> None:
    """An older success's shape keeps its evidence (status, content type, close code,
    subprotocol) in one object for every probe answered alike; each probe's runs still come
    back as they were kept, and a probe answered differently has its own."""
    from dataclasses import replace

    h = History()
    h.configure(config(3))
    sent: dict[str, list[Result]] = {}
    for i in range(3):
        for p, ctype in (("p0", "text/html"), ("p1", "text/html"), ("p2", "application/json")):
            r = replace(run(i), probe=p, target=f"http://127.0.0.1:1/{p}",
                        evidence=replace(run(i).evidence, content_type=ctype))
            sent.setdefault(p, []).append(r)
            h.observe(r)
    s0, s1, s2 = (h._rings[p].shape for p in ("p0", "p1", "p2"))
    assert s0 is not None and s1 is not None and s2 is not None
    assert s0 is not s1  # a shape names its probe
    assert s0.evidence is s1.evidence
    assert s2.evidence is not s0.evidence and s2.evidence.content_type == "application/json"
    for p, runs in sent.items():
        newest, *older = h.runs(p)
        assert newest == runs[-1]
        assert older == [slim(r) for r in reversed(runs[:-1])]


def test_a_ring_makes_its_slots_as_runs_come_and_keeps_what_a_full_one_kept() -> None:
    """A probe's ring holds one slot after its first run and grows to its depth; at every
    count of runs, and after a reload resizes it halfway, it gives back the newest runs (the
    newest whole, older successes slimmed, failures whole) as a ring made full did."""
    from dataclasses import replace

    from monitor.sinks.history import _Ring

    def made(i: int) -> Result:
        r = run(i, Outcome.TIMEOUT if i % 3 == 2 else Outcome.SUCCESS)
        return replace(r, trace_id=f"{i + 1:032x}", span_id=f"{i + 7:016x}")

    def observe(ring: _Ring, r: Result) -> None:
        last = ring.newest()
        if last is not None and last.success:
            ring.slim_newest(last)
        ring.push(r)

    def expected(sent: list[Result], depth: int) -> list[Result]:
        newest = list(reversed(sent))[:depth]
        return newest[:1] + [slim(r) if r.success else r for r in newest[1:]]

    for depth in (1, 2, 3, 10, 100):
        for n in sorted({0, 1, 2, 3, depth - 1, depth, depth + 1, 2 * depth + 3}):
            ring = _Ring(depth)
            sent = [made(i) for i in range(n)]
            for r in sent:
                observe(ring, r)
            assert ring.size == min(depth, 1 << max(n - 1, 0).bit_length()) or n == 0
            assert [ring.result(s) for s in ring.slots()] == expected(sent, depth), (depth, n)
            held = sent[max(0, n - depth):]
            for new_depth in (1, 4, 100):  # a reload: more or fewer probes
                other = ring.resized(new_depth)
                more = [made(n + i) for i in range(new_depth + 2)]
                assert [other.result(s) for s in other.slots()] == expected(held, new_depth)
                for r in more:
                    observe(other, r)
                assert [other.result(s) for s in other.slots()] == expected(held + more,
                                                                             new_depth)
    ring = _Ring(10)
    observe(ring, made(0))
    assert ring.size == 1 and len(ring.times) == 2 and len(ring.refs) == 2
