"""The scheduler: spread start times, no self-overlap, lag recorded, shards."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest

from monitor import scheduler as scheduling
from monitor.config import Probe, load_text
from monitor.scheduler import (
    FIRST_RUN_WINDOW,
    FIRST_RUNS_PER_SECOND,
    ProbeScheduler,
    first_run,
    first_window,
    in_shard,
    phase_after,
    stable_fraction,
)
from tests.support.timing import SLACK


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


async def first_runs(n: int) -> dict[str, float]:
    """Where in the second (of the wall clock: phases are epoch-aligned, the same in every
    daemon and across restarts) each probe first ran, for ``n`` probes with a 1 s interval."""
    rec = Recorder()
    sched = rec.scheduler()
    t0, wall = time.monotonic(), time.time()
    sched.start(probes(n, interval="1s", timeout="0.5s"))
    await asyncio.sleep(1.2)
    await sched.stop(1.0)
    return {name: (wall + starts[0] - t0) % 1.0 for name, starts in rec.starts.items()}


async def test_start_times_are_spread_over_the_interval_and_kept_across_a_restart() -> None:
    """What is promised, checked without the scheduler's own hash: forty probes' first
    runs fall in every quarter of the interval, and a restart puts each where it was."""
    first = await first_runs(40)
    again = await first_runs(40)  # a restart
    assert len(first) == len(again) == 40
    assert all(0 <= t < 1.2 for t in first.values()), first
    quarters = Counter(min(int(t / 0.25), 3) for t in first.values())
    assert all(quarters[q] >= 4 for q in range(4)), quarters  # ~10 each if spread evenly
    # The same place: two random placements differ by a third of the interval on average
    # (median 0.29 s here); a start made late by a loaded machine moves only its own.
    moved = sorted(min(abs(again[n] - first[n]), 1 - abs(again[n] - first[n]))
                   for n in first)  # around the second
    assert moved[len(moved) // 2] < 0.05, moved
    assert sum(d > 0.2 for d in moved) <= 4, moved


async def test_runs_repeat_at_the_interval_and_lag_is_recorded() -> None:
    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(2, interval="0.3s", timeout="0.1s"))
    await asyncio.sleep(1.5)
    await sched.stop(1.0)
    for starts in rec.starts.values():
        assert len(starts) >= 4
        # Starts are planned on a fixed grid (anchor + k * interval): a late start does not
        # push the next ones, so over n gaps the mean is the interval within two starts'
        # lateness (at most SLACK) / n, and no gap is half an interval short (that would be
        # a second run).
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert (starts[-1] - starts[0]) / len(gaps) == pytest.approx(0.3, abs=SLACK / len(gaps))
        assert min(gaps) > 0.3 / 2, gaps
    assert len(rec.lags) == sum(len(s) for s in rec.starts.values())
    # Lag is measured modulo the interval, so [0, 0.3) holds whatever it measures; on time
    # means most starts are late by far less than that.
    assert all(0 <= lag < 0.3 for lag in rec.lags)
    assert sorted(rec.lags)[len(rec.lags) // 2] < 0.3 / 3, rec.lags


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
    # the grace, then the cancel: not the 30 s the run would have taken
    assert 0.3 <= time.monotonic() - t0 < 0.3 + 1.0 + SLACK
    assert sched.in_flight == 0


async def test_a_run_submitted_just_before_stop_never_starts() -> None:
    # As APScheduler's executor submits a due job: a task of run_job, not started yet when
    # stop() collects the runs in flight. It must not run after stop() returns (the daemon
    # closes the probes' session then).
    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(1, interval="60s"))
    name = next(iter(sched._probes))
    submitted = asyncio.ensure_future(scheduling._run_job(sched, name))
    await sched.stop(1.0)
    await asyncio.wait_for(submitted, 2.0)
    assert rec.starts == {}


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


@pytest.mark.parametrize(("new", "shortest", "window"), [
    (0, 60.0, FIRST_RUN_WINDOW),
    (1, 3600.0, FIRST_RUN_WINDOW),
    (int(FIRST_RUNS_PER_SECOND * FIRST_RUN_WINDOW), 60.0, FIRST_RUN_WINDOW),
    (5000, 60.0, 5000 / FIRST_RUNS_PER_SECOND),  # stretched to keep to the rate
    (10000, 600.0, 10000 / FIRST_RUNS_PER_SECOND),
    (10000, 25.0, 25.0),  # never past one interval: by then they run on their phases
    (100000, 11.0, 11.0),
])
def test_the_first_run_window_keeps_to_a_rate(new: int, shortest: float, window: float) -> None:
    assert first_window(new, shortest) == pytest.approx(window)


async def test_many_new_probes_first_run_at_a_bounded_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 probes crammed into the 10 s window piled up ~1,000 runs in flight (+104 MiB
    of RSS kept, bench memory): many new probes are spread at FIRST_RUNS_PER_SECOND at most.
    Time-compressed: a 1 s window and 200 a second, so 600 probes take 3 s."""
    monkeypatch.setattr(scheduling, "FIRST_RUN_WINDOW", 1.0)
    monkeypatch.setattr(scheduling, "FIRST_RUNS_PER_SECOND", 200.0)
    rec = Recorder()
    sched = rec.scheduler()
    started = time.monotonic()
    sched.start(probes(600, interval="60s", timeout="1s"))
    await asyncio.sleep(3.0 + 0.5)  # bounded: the stretched window and a margin
    await sched.stop(1.0)
    offsets = sorted(s[0] - started for s in rec.starts.values())
    assert len(offsets) == 600  # (a few reach their phase in the 60 s too: first runs only)
    assert offsets[-1] > 2.5, offsets[-1]  # over the whole 3 s, not the 1 s window
    per_half_second = Counter(int(t / 0.5) for t in offsets)
    # 100 a half-second on average; a hash spreads them unevenly, but never near the 300
    # that the unstretched 1 s window would start.
    assert max(per_half_second.values()) < 150, per_half_second


def test_probes_compared_with_each_other_run_in_one_round() -> None:
    """The probes that send the same credentials to one host, on several paths, start within
    ROUND_SPREAD of each other (their answers are compared); probes of one path alone, or
    without credentials, stay spread over the interval by name."""
    from monitor.config import load_text
    from monitor.scheduler import ROUND_SPREAD, next_run, rounds

    text = ("auth:\n  a: {type: jwt, secret_env: S}\nprobes:\n"
            + "".join(f'  - name: ws{i}\n    websocket: {{url: "ws://h:1/p{i % 2}", auth: a}}\n'
                      for i in range(6))
            + "".join(f'  - name: one{i}\n    websocket: {{url: "ws://g:1/only", auth: a}}\n'
                      for i in range(6))
            + "".join(f'  - name: open{i}\n    http: {{url: "http://h:1/x{i}"}}\n'
                      for i in range(6)))
    probes = load_text(text, env={"S": "s-0123456789abcdef0123456789"}).probes
    grouped = rounds(probes)
    assert set(grouped) == {f"ws{i}" for i in range(6)}
    starts = {p.key: next_run(p, 1_000_000.0, grouped.get(p.key)) % 60.0 for p in probes}
    ws = [starts[f"ws{i}"] for i in range(6)]
    assert max(ws) - min(ws) <= ROUND_SPREAD
    for prefix in ("one", "open"):  # spread by name: not all within one round's seconds
        spread = [starts[f"{prefix}{i}"] for i in range(6)]
        assert max(spread) - min(spread) > ROUND_SPREAD


def test_a_flow_asking_a_rounds_host_runs_just_after_the_round() -> None:
    """A flow whose WebSocket step asks the host of a round of WebSocket probes runs after
    all of them, in every location alike: when that host breaks, the WebSocket probes see
    it first and page under their own name; the flow, the same cause seen later, does not
    open an incident first. A flow on another host, or with credentials of its own, and a
    plain probe of the host keep their own phases."""
    from monitor.scheduler import FOLLOWS, ROUND_SPREAD, next_run, rounds

    flow = ("  - name: {name}\n    flow:\n"
            "      - {{name: login, http: {{url: 'http://{host}:1/login'}}}}\n"
            "      - {{name: chat, websocket: {{url: 'ws://{host}:1/p0'}}}}\n")
    text = ("auth:\n  a: {type: jwt, secret_env: S}\nprobes:\n"
            + "".join(f'  - name: ws{i}\n    websocket: {{url: "ws://h:1/p{i % 2}", auth: a}}\n'
                      for i in range(6))
            + "".join(flow.format(name=f"flow{i}", host="h") for i in range(4))
            + flow.format(name="elsewhere", host="g")
            + '  - name: open\n    http: {url: "http://h:1/x"}\n')
    probes = load_text(text, env={"S": "s-0123456789abcdef0123456789"}).probes
    grouped = rounds(probes)
    (key,) = {grouped[f"ws{i}"] for i in range(6)}
    assert {grouped[f"flow{i}"] for i in range(4)} == {key + FOLLOWS}
    assert "elsewhere" not in grouped and "open" not in grouped
    for after in (1_000_000.0, 1_000_037.5, 1_234_567.8):
        ws = [next_run(p, after, grouped[p.key]) for p in probes if p.key.startswith("ws")]
        flows = [next_run(p, min(ws) - 0.01, grouped[p.key]) for p in probes
                 if p.key.startswith("flow")]
        assert all(max(ws) < f <= min(ws) + 2 * ROUND_SPREAD for f in flows), (ws, flows)


def test_every_shard_places_the_probes_by_the_rounds_of_the_whole_file() -> None:
    """A round's probes and the flow that follows it may sit on different shards: each
    shard's daemon schedules its own probes where the whole file puts them, so the flow runs
    after the round's WebSocket probes whichever shard runs it (the shipped probes.yaml)."""
    from pathlib import Path

    from monitor.config import load_file
    from monitor.daemon import Daemon, DaemonOptions
    from monitor.scheduler import FOLLOWS, rounds

    shipped = Path(__file__).resolve().parents[1] / "probes.yaml"
    whole = rounds(load_file(str(shipped), env={}).probes)
    assert whole["e2e-chat"].endswith(FOLLOWS)
    seen: set[str] = set()
    for index in range(3):
        daemon = Daemon(DaemonOptions(config_path=str(shipped), shard=(index, 3), env={}))
        config, in_round = daemon._load()
        assert in_round == whole
        seen |= {p.key for p in config.probes}
    assert set(whole) <= seen  # the round and its flow spread over the shards


async def test_probes_of_one_interval_share_a_trigger_and_run_on_their_own_phases() -> None:
    """Each job's runs are those a trigger of its own (started at its anchor) gives, while
    its trigger is one object for every probe of its interval, which only ever steps; a
    reload that changes an interval moves the job to that interval's trigger."""
    from datetime import UTC, datetime, timedelta

    from monitor.scheduler.engine import StepTrigger

    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(20, interval="60s", timeout="1s"))
    try:
        jobs = {j.id: j for j in sched._scheduler.get_jobs()}
        assert len(jobs) == 20 and len({id(j.trigger) for j in jobs.values()}) == 1
        shared = jobs["p0"].trigger
        assert shared._steps  # its start date is never read
        for name, job in jobs.items():
            own = StepTrigger(seconds=60, timezone=UTC,
                              start_date=datetime.fromtimestamp(sched._anchor[name], UTC))
            assert job.next_run_time == own.get_next_fire_time(None, datetime.now(UTC))
            mine = theirs = job.next_run_time
            for _ in range(5):
                now = mine + timedelta(seconds=1)
                mine = shared.get_next_fire_time(mine, now)
                theirs = own.get_next_fire_time(theirs, now)
                assert mine == theirs
        sched.update(probes(20, interval="60s", timeout="1s")[:10]
                     + probes(20, interval="30s", timeout="1s")[10:])
        jobs = {j.id: j for j in sched._scheduler.get_jobs()}
        assert jobs["p0"].trigger is shared and jobs["p19"].trigger is not shared
        assert jobs["p19"].trigger.interval == timedelta(seconds=30)
        assert sorted(sched._triggers) == [30.0, 60.0]
    finally:
        await sched.stop(1.0)


async def test_a_start_or_reload_wakes_apscheduler_once_not_once_a_job() -> None:
    """Jobs are added with APScheduler held (it wakes for every job added while it runs:
    10,000 callbacks queued at once for 10,000 probes); it runs again after, and a scheduler
    held by stop() stays held."""
    from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

    rec = Recorder()
    sched = rec.scheduler()
    wakeups = 0
    wakeup = sched._scheduler.wakeup

    def counted() -> None:
        nonlocal wakeups
        wakeups += 1
        wakeup()

    sched._scheduler.wakeup = counted  # type: ignore[method-assign]
    sched.start(probes(200, interval="0.3s", timeout="0.1s"))
    assert wakeups <= 2 and sched._scheduler.state == STATE_RUNNING
    sched.update(probes(300, interval="0.3s", timeout="0.1s"))
    assert wakeups <= 3 and sched._scheduler.state == STATE_RUNNING
    await asyncio.sleep(0.8)
    assert len(rec.starts) == 300  # every job ran
    sched._scheduler.pause()  # as stop() holds it first
    sched.update(probes(10, interval="0.3s", timeout="0.1s"))
    assert sched._scheduler.state == STATE_PAUSED
    await sched.stop(1.0)
