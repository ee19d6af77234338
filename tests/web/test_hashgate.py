"""The gate in front of the password hashing (monitor/web/hashgate.py), without sockets:
how many run at once, who waits, who is refused at once, in which order the waiting are
served, and that nothing is left behind by a cancelled or refused request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from monitor.web.hashgate import FairGate, Saturated, client_of


class Jobs:
    """Jobs that block in the gate's threads until released, recording their start order."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def job(self, name: str) -> object:
        event = self._events.setdefault(name, threading.Event())

        def run() -> str:
            with self._lock:
                self.started.append(name)
            assert event.wait(10), f"{name} was never released"
            return name
        return run

    def release(self, name: str) -> None:
        self._events[name].set()

    async def wait_started(self, count: int) -> None:
        for _ in range(500):
            if len(self.started) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.started} started")


def submit(gate: FairGate, jobs: Jobs, client: str, name: str) -> asyncio.Task[object]:
    return asyncio.create_task(gate.run(client, jobs.job(name)))  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_worker_serves_the_least_recently_served_client_first() -> None:
    gate, jobs = FairGate(workers=1, per_client=2, total=10), Jobs()
    try:
        flood = [submit(gate, jobs, "flood", f"f{i}") for i in range(3)]  # f0 runs, 2 wait
        await jobs.wait_started(1)
        await settle()
        assert gate.running == 1 and gate.waiting == 2
        with pytest.raises(Saturated):  # its room is full: refused at once
            await gate.run("flood", jobs.job("f3"))  # type: ignore[arg-type]
        honest = submit(gate, jobs, "honest", "h0")  # arrives last
        await settle()
        jobs.release("f0")
        await jobs.wait_started(2)
        assert jobs.started == ["f0", "h0"]  # before the flood's queued ones
        for name in ("h0", "f1", "f2"):
            jobs.release(name)
        assert await honest == "h0"
        assert [await t for t in flood] == ["f0", "f1", "f2"]
        assert jobs.started == ["f0", "h0", "f1", "f2"]
        assert gate.refused == 1 and gate.waiting == 0 and gate.running == 0
    finally:
        gate.close()


async def test_clients_take_turns() -> None:
    gate, jobs = FairGate(workers=1, per_client=3, total=10), Jobs()
    try:
        tasks = [submit(gate, jobs, "a", "a0")]
        await jobs.wait_started(1)
        tasks += [submit(gate, jobs, "a", f"a{i}") for i in (1, 2, 3)]
        await settle()
        tasks += [submit(gate, jobs, "b", f"b{i}") for i in (0, 1)]
        await settle()
        tasks += [submit(gate, jobs, "c", "c0")]
        await settle()
        order = ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]
        for i, name in enumerate(order):
            await jobs.wait_started(i + 1)
            jobs.release(name)
        await asyncio.gather(*tasks)
        assert jobs.started == order
    finally:
        gate.close()


async def test_no_client_holds_every_worker() -> None:
    gate, jobs = FairGate(workers=3, per_client=5, total=10), Jobs()
    try:
        tasks = [submit(gate, jobs, "flood", f"f{i}") for i in range(4)]
        await jobs.wait_started(2)
        await settle()
        assert sorted(jobs.started) == ["f0", "f1"]  # two of three: one stays free
        tasks.append(submit(gate, jobs, "honest", "h0"))
        await jobs.wait_started(3)
        assert jobs.started[2] == "h0"  # at once, with nothing released
        for name in ("h0", "f0", "f1", "f2", "f3"):
            jobs.release(name)
        await asyncio.gather(*tasks)
    finally:
        gate.close()


async def test_the_room_is_bounded_in_total() -> None:
    gate, jobs = FairGate(workers=1, per_client=1, total=3), Jobs()
    try:
        tasks = [submit(gate, jobs, "c0", "run")]
        await jobs.wait_started(1)
        tasks += [submit(gate, jobs, f"c{i}", f"w{i}") for i in (1, 2, 3)]
        await settle()
        assert gate.waiting == 3
        with pytest.raises(Saturated):
            await gate.run("c9", jobs.job("late"))  # type: ignore[arg-type]
        for name in ("run", "w1", "w2", "w3"):
            jobs.release(name)
        await asyncio.gather(*tasks)
        assert gate.waiting == 0 and "late" not in jobs.started
    finally:
        gate.close()


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    gate, jobs = FairGate(workers=1, per_client=2, total=4), Jobs()
    try:
        first = submit(gate, jobs, "a", "a0")
        await jobs.wait_started(1)
        waiting = submit(gate, jobs, "b", "b0")
        await settle()
        assert gate.waiting == 1
        waiting.cancel()  # the client went away
        await asyncio.gather(waiting, return_exceptions=True)
        assert gate.waiting == 0
        jobs.release("a0")
        await first
        assert gate.running == 0 and "b0" not in jobs.started
        assert gate._served == {} and gate._queues == {} and gate._busy == {}
    finally:
        gate.close()


async def test_close_refuses_the_waiting() -> None:
    gate, jobs = FairGate(workers=1, per_client=2, total=4), Jobs()
    running = submit(gate, jobs, "a", "a0")
    await jobs.wait_started(1)
    waiting = [submit(gate, jobs, "b", "b0"), submit(gate, jobs, "c", "c0")]
    await settle()
    gate.close()
    for task in waiting:
        with pytest.raises(Saturated):
            await task
    with pytest.raises(Saturated):
        await gate.run("d", jobs.job("d0"))  # type: ignore[arg-type]
    jobs.release("a0")
    assert await running == "a0"
    assert jobs.started == ["a0"]


@pytest.mark.parametrize(("remote", "client"), [
    ("127.0.0.1", "127.0.0.1"),
    ("10.1.2.3", "10.1.2.3"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # one host's /64 is one client
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "?"),
    ("not-an-address", "not-an-address"),
])
def test_client_of(remote: str | None, client: str) -> None:
    assert client_of(remote) == client
