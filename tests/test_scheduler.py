"""The scheduler: spread start times, no self-overlap, lag recorded, shards."""

from __future__ import annotations

import asyncio
import itertools
import time

from monitor.config import Probe, load_text
from monitor.scheduler import (
    FIRST_RUN_WINDOW,
    ProbeScheduler,
    first_run,
    in_shard,
    phase_after,
    stable_fraction,
)


def probes(n: int, interval: str = "0.4s", timeout: str = "0.2s") -> tuple[Probe, ...]:
    body = "".join(
        f"  - name: p{i}\n    http: {{url: 'http://127.0.0.1:9/'}}\n" for i in range(n))
    text = f"defaults: {{retries: 0, interval: {interval}, timeout: {timeout}}}\nprobes:\n{body}"
    return load_text(text, env={}).probes


class Recorder:
    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.starts: dict[str, list[float]] = {}
        self.active: set[str] = set()
        self.overlaps = 0
        self.lags: list[float] = []
        self.skips: list[tuple[str, str]] = []

    async def run(self, probe: Probe) -> None:
        if probe.name in self.active:
            self.overlaps += 1
        self.active.add(probe.name)
        self.starts.setdefault(probe.name, []).append(time.monotonic())
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.active.discard(probe.name)

    def scheduler(self) -> ProbeScheduler:
        return ProbeScheduler(self.run, on_lag=self.lags.append,
                              on_skip=lambda p, r: self.skips.append((p, r)))


async def test_start_times_are_spread_over_the_interval() -> None:
    rec = Recorder()
    sched = rec.scheduler()
    t0, wall = time.monotonic(), time.time()
    sched.start(probes(8, interval="1s", timeout="0.5s"))
    await asyncio.sleep(1.1)
    await sched.stop(1.0)
    firsts = sorted(starts[0] - t0 for starts in rec.starts.values())
    assert len(firsts) == 8
    # Spread by a hash of the name: not all in the same tenth of a second.
    assert firsts[-1] - firsts[0] > 0.3, firsts
    # ... at the same place of the second on every daemon (epoch-aligned phases)
    expected = sorted(phase_after(f"p{i}", 1.0, wall) - wall for i in range(8))
    for got, want in zip(firsts, expected, strict=True):
        assert abs(got - want) < 0.15, (firsts, expected)


async def test_runs_repeat_at_the_interval_and_lag_is_recorded() -> None:
    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(2, interval="0.3s", timeout="0.1s"))
    await asyncio.sleep(1.5)
    await sched.stop(1.0)
    for starts in rec.starts.values():
        assert len(starts) >= 4
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(0.2 < g < 0.45 for g in gaps), gaps
    assert len(rec.lags) == sum(len(s) for s in rec.starts.values())
    assert all(0 <= lag < 0.3 for lag in rec.lags)


async def test_a_probe_never_overlaps_itself_and_skips_are_counted() -> None:
    rec = Recorder(hold=0.75)  # a run that outlives two intervals
    sched = rec.scheduler()
    sched.start(probes(1, interval="0.3s", timeout="0.1s"))
    await asyncio.sleep(1.6)
    await sched.stop(2.0)
    assert rec.overlaps == 0
    assert len(rec.starts["p0"]) >= 2
    assert rec.skips and all(r == "overlap" for _, r in rec.skips)


async def test_update_adds_replaces_and_removes_jobs() -> None:
    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(3, interval="0.3s", timeout="0.1s"))
    await asyncio.sleep(0.7)
    sched.update(probes(1, interval="0.3s", timeout="0.1s"))
    removed_at = time.monotonic()
    await asyncio.sleep(0.8)
    await sched.stop(1.0)
    for name in ("p1", "p2"):
        assert all(t < removed_at for t in rec.starts[name])
    assert any(t > removed_at for t in rec.starts["p0"])


async def test_stop_cancels_runs_that_outlive_the_grace() -> None:
    rec = Recorder(hold=30)
    sched = rec.scheduler()
    sched.start(probes(1, interval="0.2s", timeout="0.1s"))
    await asyncio.sleep(0.5)
    assert sched.in_flight == 1
    t0 = time.monotonic()
    await sched.stop(0.3)
    assert time.monotonic() - t0 < 1.5
    assert sched.in_flight == 0


def test_every_probe_is_in_exactly_one_shard() -> None:
    names = [f"probe-{i}" for i in range(500)]
    for count in (1, 2, 3, 7):
        owners = [[i for i in range(count) if in_shard(n, (i, count))] for n in names]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(1 for o in owners if o == [i]) for i in range(count)]
        assert min(sizes) > 500 / count * 0.7, sizes  # roughly balanced
    assert in_shard("anything", None)


def test_first_run_and_phase_are_pure_functions_of_the_name() -> None:
    now = 1_800_000_000.25
    for i in range(50):
        name = f"probe-{i}"
        first = first_run(name, 60.0, now)
        assert now <= first < now + FIRST_RUN_WINDOW
        assert first == now + stable_fraction(name) * FIRST_RUN_WINDOW
        phase = phase_after(name, 60.0, first + 25.0)
        assert first + 25.0 <= phase < first + 85.0
        # the same second of the minute everywhere: epoch-aligned
        assert abs((phase % 60.0) - stable_fraction(name) * 60.0) < 1e-6
    assert first_run("a", 4.0, now) < now + 4.0  # a short interval bounds the window


async def test_new_probes_run_within_the_first_10s_at_60s_intervals() -> None:
    """After a start and after a reload that adds probes, every new probe runs within the
    first 10 s, spread over them by its name, not somewhere in its 60 s interval."""
    rec = Recorder()
    sched = rec.scheduler()
    started = time.monotonic()
    sched.start(probes(4, interval="60s", timeout="10s"))
    await asyncio.sleep(0.5)
    reloaded = time.monotonic()
    sched.update(probes(6, interval="60s", timeout="10s"))
    await asyncio.sleep(FIRST_RUN_WINDOW + 1)  # bounded: the window and a margin
    await sched.stop(1.0)
    assert sorted(rec.starts) == [f"p{i}" for i in range(6)]
    for name, starts in rec.starts.items():
        base = started if name in ("p0", "p1", "p2", "p3") else reloaded
        offset = starts[0] - base
        assert len(starts) == 1  # then on its phase, tens of seconds later
        assert abs(offset - stable_fraction(name) * FIRST_RUN_WINDOW) < 0.5, (name, offset)
    offsets = sorted(s[0] - started for s in rec.starts.values())
    assert offsets[-1] - offsets[0] > 1.0, offsets  # spread, not all at once
