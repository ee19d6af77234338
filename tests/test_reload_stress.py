"""A hundred reloads while probes run, good and bad files alternating.

A real :class:`Daemon` in this loop probes a loopback target that counts, per probe, the
requests in flight. Good files add and remove probes and change intervals (which replaces
their jobs); bad files must change nothing. Throughout: no probe lost (each configured
probe keeps running), none duplicated (no probe runs faster than its interval allows) and
none running twice at once (at most one request in flight per probe at the target); at the
end the removed probes' series are gone from /metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from monitor.daemon import Daemon, DaemonOptions
from tests.support.servers import serving

STABLE = [f"stable-{i}" for i in range(6)]
ROTATING = [f"rot-{i}" for i in range(8)]
RELOADS = 100


@dataclass
class Target:
    """Counts requests per probe (the path names the probe) and how many overlap."""

    url: str = ""
    delay: tuple[float, float] = (0.02, 0.12)  # each answer takes this long (uniform)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    starts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set by every request

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.starts[name].append(time.monotonic())
        self.started.set()
        self.in_flight[name] += 1
        self.max_in_flight[name] = max(self.max_in_flight[name], self.in_flight[name])
        try:
            # Long enough that runs are in flight when reloads land.
            await asyncio.sleep(random.uniform(*self.delay))
            return web.json_response({"status": "healthy"})
        finally:
            self.in_flight[name] -= 1


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    app = web.Application()
    app.router.add_get("/p/{name}", t.handle)
    async with serving(app) as t.url:
        yield t


def good(target: Target, k: int) -> tuple[str, dict[str, float]]:
    """Variant k: the stable probes (intervals alternate, which replaces their jobs) and a
    window of the rotating ones."""
    intervals = {n: (0.25 if (k // 2 + i) % 2 else 0.3) for i, n in enumerate(STABLE)}
    for n in ROTATING[k % 4:k % 4 + 4]:
        intervals[n] = 0.3
    body = "".join(
        f"  - name: {n}\n    interval: {iv}s\n    timeout: 0.2s\n"
        f"    http: {{url: '{target.url}/p/{n}'}}\n" for n, iv in intervals.items())
    return f"defaults: {{retries: 0, labels: {{flavour: v{k % 3}}}}}\nprobes:\n{body}", intervals


BAD = [
    "probes: [\n",  # invalid YAML
    "probes:\n  - name: stable-0\n    htp: {url: 'http://127.0.0.1:1/'}\n",  # unknown key
    "probes:\n  - {name: a, http: {url: 'http://127.0.0.1:1/'}}\n"
    "  - {name: a, http: {url: 'http://127.0.0.1:1/'}}\n",  # duplicate names
    "probes:\n  - {name: a, interval: 1s, timeout: 2s, http: {url: 'http://127.0.0.1:1/'}}\n",
    "probes:\n  - {name: a, http: {url: '${SYNTHMON_RELOAD_UNSET}/x'}}\n",  # unset ${VAR}
]


def series_probes(daemon: Daemon) -> set[str]:
    text = daemon.surfacer.render().decode()
    return {s.labels["probe"] for fam in text_string_to_metric_families(text)
            for s in fam.samples if "probe" in s.labels}


async def test_hundred_reloads_alternating_good_and_bad(target: Target, tmp_path: Path) -> None:
    random.seed(4)
    path = tmp_path / "probes.yaml"
    text, current = good(target, 0)
    path.write_text(text)
    daemon = Daemon(DaemonOptions(config_path=str(path)))
    await daemon.start()
    jobs = daemon._scheduler._scheduler  # APScheduler itself: its job list is the truth
    t_start = time.monotonic()
    ever: set[str] = set(current)
    try:
        for k in range(1, RELOADS + 1):
            if k % 2 == 0:
                text, wanted = good(target, k)
                path.write_text(text)
                ok, errors = await daemon.reload()
                assert ok, errors
                current = wanted
                ever |= set(wanted)
            else:
                path.write_text(BAD[k % len(BAD)])
                ok, errors = await daemon.reload()
                assert not ok and errors
                assert all(e.startswith(f"{path}:") for e in errors), errors
            assert daemon.config is not None
            assert {p.name for p in daemon.config.probes} == set(current)
            ids = [job.id for job in jobs.get_jobs()]
            assert sorted(ids) == sorted(current), (k, ids)  # none lost, none twice
            await asyncio.sleep(random.uniform(0.02, 0.1))
        # The last reload was good; let every probe run a few times under it.
        t_final = time.monotonic()
        await asyncio.sleep(1.5)
    finally:
        await daemon.stop()
    elapsed = time.monotonic() - t_start

    for name in ever:
        assert target.max_in_flight[name] <= 1, (name, target.max_in_flight[name])
    # Each stable probe's interval changed on every good reload (its job replaced fifty
    # times), yet it ran no more often than its shorter interval allows (a duplicate job,
    # or a replaced job starting afresh, would show here) and no less than half as often
    # as its longer one (a job lost, or starved by reloads, would show here).
    for name in STABLE:
        starts = target.starts[name]
        assert len(starts) <= elapsed / 0.25 + 2, (name, len(starts), elapsed)
        assert len(starts) >= elapsed / 0.3 * 0.5, (name, len(starts), elapsed)
        # and never two runs close together: a start late by a loaded machine shortens
        # the gap after it, never to half an interval, which a second job would
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) > 0.25 / 2, (name, sorted(gaps)[:5])
    for name in current:
        after = [t for t in target.starts[name] if t > t_final]
        assert len(after) >= 3, (name, after)  # every probe of the final config runs
    removed = ever - set(current)
    assert removed, "the final variant should have dropped some rotating probes"
    assert series_probes(daemon) == set(current)
    assert set(daemon.history.probes()) == set(current)
    text = daemon.surfacer.render().decode()
    assert f"synthmon_probes_configured {float(len(current))}" in text
    assert "synthmon_config_last_reload_successful 1.0" in text
    for name in removed:
        assert f'probe="{name}"' not in text
    skipped = daemon.surfacer.skipped
    print(f"{RELOADS} reloads in {elapsed:.1f}s; runs per stable probe: "
          f"{[len(target.starts[n]) for n in STABLE]}; skipped: {skipped}")


async def test_reload_of_a_probe_mid_run_waits_for_the_old_run(target: Target,
                                                               tmp_path: Path) -> None:
    """A job replaced (new interval) while its run is in flight: the new job's first fire
    is skipped as an overlap instead of running the probe twice at once."""
    path = tmp_path / "probes.yaml"

    def write(interval: str) -> None:
        path.write_text(f"probes:\n  - name: slow\n    interval: {interval}\n    timeout: 0.9s\n"
                        "    retries: 0\n"
                        f"    http: {{url: '{target.url}/p/slow'}}\n")

    target.delay = (0.8, 0.8)
    write("1s")
    daemon = Daemon(DaemonOptions(config_path=str(path)))
    try:
        await daemon.start()
        await asyncio.wait_for(target.started.wait(), 3)
        assert target.in_flight["slow"] == 1
        for interval in ("0.95s", "0.92s", "0.91s"):  # replace the job three times mid-run
            write(interval)
            assert (await daemon.reload())[0]
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)
    finally:
        await daemon.stop()
    assert target.max_in_flight["slow"] == 1
    assert len(target.starts["slow"]) >= 2  # and it went on running
