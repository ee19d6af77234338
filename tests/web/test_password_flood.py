"""A flood of wrong passwords does not hold up valid users or the probes (issue 20, group 4).

Before: 50 connections sending wrong passwords made a valid first login wait 7.9 s (and 30 s
and more on a busy machine): every check queued behind all the others. Here the daemon runs
in this process behind basic auth, the flood (bench/flood.py, 50 connections, a new wrong
password each time) in a process of its own, and what is asserted is who waited behind
whom, not how long: a valid first login from another address sees at most the checks that
were already running finish before its own; a scraper whose credentials were verified once
never enters the queue again; the flood is refused (429) once its waiting room is full; the
probes keep their schedule. bench/ (`password_flood`) reports the times.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import bcrypt
import pytest
from aiohttp import web

from bench.flood import basic, flood_process, login
from monitor.daemon import Daemon, DaemonOptions
from monitor.web.basicauth import BasicAuth, Verdict, cost_of
from monitor.web.hashgate import FairGate
from monitor.web.server import build_app
from monitor.web.webconfig import MAX_BCRYPT_COST, MIN_BCRYPT_COST, WebConfigError, load_web_config
from tests.support.servers import serving

T = TypeVar("T")
PASSWORD = "flood-test-Password-41c7"
OTHER, SCRAPER = "127.0.0.2", "127.0.0.3"


class RecordingGate(FairGate):
    """The daemon's gate, recording which client entered it and how full it was."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: list[str] = []
        self.fullest = 0

    async def run(self, client: str, fn: Callable[[], T]) -> T:
        self.entered.append(client)
        self.fullest = max(self.fullest, self.waiting)
        return await super().run(client, fn)


async def test_a_flood_of_wrong_passwords_holds_up_no_valid_user(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=MIN_BCRYPT_COST))
    users = {name: hashed for name in ("prometheus", "scraper", "v0", "v1", "v2", "s0")}
    gate = RecordingGate()
    auth = BasicAuth(users, gate)
    target = web.Application()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    target.router.add_get("/", ok)
    async with serving(target) as target_url:
        config = tmp_path / "probes.yaml"
        config.write_text("defaults: {interval: 500ms, timeout: 400ms, retries: 0}\n"
                          f"probes:\n  - {{name: p, http: {{url: '{target_url}/'}}}}\n")
        daemon = Daemon(DaemonOptions(str(config)))
        await daemon.start()
        try:
            async with serving(build_app(daemon, auth)) as base:
                await flooded(daemon, auth, gate, base + "/metrics")
        finally:
            await daemon.stop()
            auth.close()


async def flooded(daemon: Daemon, auth: BasicAuth, gate: RecordingGate, url: str) -> None:
    assert (await login(url, "scraper", PASSWORD, source=SCRAPER))[0] == 200
    stack = contextlib.ExitStack()
    flood = await asyncio.to_thread(stack.enter_context,
                                    flood_process(url, "prometheus", connections=50))
    try:
        # In full swing: the flood has filled its waiting room and is being refused.
        deadline = time.monotonic() + 30
        while gate.refused < 10:
            assert time.monotonic() < deadline, "the flood never filled its waiting room"
            await asyncio.sleep(0.1)
        runs_before = len(daemon.history.runs("p"))
        flood_started = time.monotonic()
        for user in ("v0", "v1", "v2"):
            before = auth.verifications
            status, _ = await login(url, user, PASSWORD, source=OTHER)
            assert status == 200
            # Its own check, and at most those running when it came (one a worker) and
            # those that ran beside it on the other workers: never the flood's queue.
            ran = auth.verifications - before
            assert ran <= 2 * gate.workers + 1, (user, ran, gate.workers)
        entered = len(gate.entered)
        for _ in range(20):  # verified once: answered without entering the gate
            assert (await login(url, "scraper", PASSWORD, source=SCRAPER))[0] == 200
        assert SCRAPER not in gate.entered[entered:]
        # From the flood's own address a valid login is answered too, 200 or a fast 429.
        status, _ = await login(url, "s0", PASSWORD, source="127.0.0.1")
        assert status in (200, 429)
        flood_seconds = time.monotonic() - flood_started
        runs = len(daemon.history.runs("p")) - runs_before
    finally:
        await asyncio.to_thread(stack.close)
    assert flood.answers.get(429, 0) > 0 and flood.answers.get(401, 0) > 0, flood.answers
    assert 200 not in flood.answers
    assert gate.fullest <= gate.total
    # The probes kept their schedule (one run every 0.5 s) while the flood went on.
    assert runs >= flood_seconds / 0.5 / 2 - 1, (runs, flood_seconds)
    assert daemon.history.runs("p")[-1].outcome.value == "success"


# --------------------------------------------------------------------------- costs


def _web_config(tmp_path: Path, users: dict[str, bytes]) -> Path:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n" + "".join(
        f"  {u}: '{h.decode()}'\n" for u, h in users.items()))
    return path


def _hash_of_cost(cost: int) -> bytes:
    # bcrypt refuses to make hashes below cost 4; above, a real hash is slow to make, and
    # only its prefix is read at load.
    if 4 <= cost <= 12:
        return bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=cost))
    return f"$2b${cost:02d}$".encode() + bcrypt.gensalt(rounds=4)[7:] + b"A" * 31


@pytest.mark.parametrize("cost", [4, 5, MIN_BCRYPT_COST - 1, MAX_BCRYPT_COST + 1, 31])
def test_a_cost_out_of_range_is_refused_at_load(tmp_path: Path, cost: int) -> None:
    hashed = _hash_of_cost(cost)
    assert cost_of(hashed) == cost
    path = _web_config(tmp_path, {"ok": _hash_of_cost(MIN_BCRYPT_COST), "cheap": hashed})
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3: basic_auth_users.cheap: bcrypt cost {cost} is too ")
    assert "htpasswd -nBC 12 cheap" in problem


def test_costs_in_range_load(tmp_path: Path) -> None:
    users = {"a": _hash_of_cost(MIN_BCRYPT_COST), "b": _hash_of_cost(12)}
    assert load_web_config(_web_config(tmp_path, users)).users == users


async def test_a_cheaper_hash_fails_as_slowly_as_the_dearest() -> None:
    """Users of cost 10 and 12: a wrong password for the cheaper one is answered about as
    late as a check at cost 12 (four times a check at 10), and an unknown user is checked
    against a dummy of the highest cost; so timing tells neither which users exist nor
    which one has the cheaper hash. Without the pause the ratio below is about 1."""
    cheap = bcrypt.hashpw(b"cheap-pw", bcrypt.gensalt(rounds=10))
    dear = bcrypt.hashpw(b"dear-pw", bcrypt.gensalt(rounds=12))
    auth = BasicAuth({"cheap": cheap, "dear": dear}, FairGate(workers=1))
    tries = iter(range(1000))
    try:
        async def failed(user: str) -> float:
            t0 = time.perf_counter()
            assert await auth.check(basic(user, f"wrong-{next(tries)}")) is Verdict.DENIED
            return time.perf_counter() - t0

        def alone() -> float:  # what a check at cost 10 takes right now
            t0 = time.perf_counter()
            bcrypt.checkpw(b"nope", cheap)
            return time.perf_counter() - t0

        ratios = []
        for _ in range(5):
            before = alone()
            took = await failed("cheap")
            ratios.append(took / ((before + alone()) / 2))
        assert statistics.median(ratios) >= 2.0, ratios
        assert auth.max_cost == 12 and cost_of(auth._dummy) == 12
        assert await failed("nobody") > 0  # checked, against the dummy
    finally:
        auth.close()
