"""The daemon's garbage collector settings (monitor.gcpolicy): what lives as long as the
daemon is frozen out of the collections once a config is adopted, the young generation is
collected less often, and the ground it stands on: a successful run makes no cycles."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import eventloop, gcpolicy
from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.probes.context import open_context
from monitor.probes.run import run_probe
from monitor.redact import Redactor
from monitor.sinks import default_sinks

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture
def restored() -> Iterator[None]:
    """The test process's collector as it was: nothing frozen, its thresholds."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


class _Answer(asyncio.Protocol):
    """A target answering every connection at once, as nginx does, with nothing of its own
    that could leave a cycle in this process."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(ANSWER)  # type: ignore[attr-defined]
            self.transport.close()


def test_a_successful_http_run_leaves_no_cyclic_garbage() -> None:
    """What the policy counts on: on the daemon's loop (uvloop), everything a run makes,
    through the daemon's sinks, is freed by reference counting, so freezing a run in flight
    keeps nothing alive. (asyncio's own loop leaves each connection's transport in a cycle:
    collected young, as ever.)"""
    assert eventloop.run(_runs_cyclic_garbage(), "uvloop") == 0


async def _runs_cyclic_garbage() -> int:
    server = await asyncio.get_running_loop().create_server(_Answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = load_text(f"probes:\n  - {{name: a, http: {{url: 'http://127.0.0.1:{port}/x'}}}}\n",
                       env={})
    ctx = open_context(Redactor())
    sinks = default_sinks(None)
    sinks.configure(config)
    probe = config.probes[0]
    try:
        for _ in range(3):  # first-use caches filled
            sinks.observe(await run_probe(probe, ctx))
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                result = await run_probe(probe, ctx)
                assert result.outcome is Outcome.SUCCESS, result.detail
                sinks.observe(result)
            del result
            return gc.collect()
        finally:
            gc.enable()
    finally:
        await ctx.close()
        server.close()


def test_settle_freezes_what_is_alive_and_frees_it_again_at_the_next_settle(
        restored: None) -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle alive now
    gcpolicy.settle()
    assert gc.get_freeze_count() > 0
    assert not gc.is_tracked(a) or all(x is not a for x in gc.get_objects())
    del a, b  # garbage now, but frozen: a collection does not see it
    assert gc.collect() == 0
    c, d = Node(), Node()
    c.other, d.other = d, c
    del c, d  # a cycle made after the freeze is collected as ever
    assert gc.collect() == 2
    gcpolicy.settle()  # unfreezes first: the cycle frozen before is collected now
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assert gc.collect() == 0  # ... it was, by settle's own collection


async def test_the_daemon_sets_its_own_process_collector_only(tmp_path: Path,
                                                              restored: None) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text("probes:\n  - {name: a, interval: 1h, http: {url: 'http://127.0.0.1:1/'}}\n")
    gc.unfreeze()
    before = gc.get_threshold()
    guest = Daemon(DaemonOptions(str(path)))
    await guest.start()
    await guest.stop()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before

    owner = Daemon(DaemonOptions(str(path), own_process=True))
    await owner.start()
    try:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == gcpolicy.YOUNG_THRESHOLD
        gc.unfreeze()
        ok, _ = await owner.reload()
        assert ok and gc.get_freeze_count() > 0  # frozen again after a reload
    finally:
        await owner.stop()
