"""The egress guard (tests/support/netguard.py) catches what the audit hook cannot: a connect on
uvloop, a datagram, a child process, a DNS query; and lets loopback through."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from tests import conftest
from tests.support import netguard
from tests.support.servers import ROOT


@pytest.mark.egress_attempts(1)
def test_the_session_runs_in_a_loopback_only_namespace() -> None:
    if conftest._NETNS["problem"] is not None:
        if os.environ.get("CI"):
            pytest.fail(f"egress guard off in CI: {conftest._NETNS['problem']}")
        pytest.skip(f"egress guard off: {conftest._NETNS['problem']}")
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    before = netguard.no_route_attempts()
    with socket.socket() as s:
        assert s.connect_ex(("192.0.2.1", 80)) != 0
    assert netguard.no_route_attempts() == before + 1


def test_the_guard_fails_every_test_that_tries_to_leave_loopback() -> None:
    if conftest._NETNS["problem"] is not None:
        pytest.skip(f"egress guard off: {conftest._NETNS['problem']}")
    env = {k: v for k, v in os.environ.items() if k != "SYNTHMON_TEST_NETNS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA",
         "tests/egress_canary.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    errors = set(re.findall(r"^ERROR tests/egress_canary.py::(\S+)", out, re.M))
    passed = set(re.findall(r"^PASSED tests/egress_canary.py::(\S+)", out, re.M))
    # every test body passed: only the guard (at teardown) turns them red
    assert passed == {
        f"test_connects_off_loopback[{loop}-192.0.2.1-80]" for loop in ("asyncio", "uvloop")
    } | {f"test_connects_off_loopback[{loop}-2001:db8::1-80]" for loop in ("asyncio", "uvloop")
    } | {f"test_sends_a_datagram_off_loopback[{loop}]" for loop in ("asyncio", "uvloop")
    } | {f"test_stays_on_loopback[{loop}]" for loop in ("asyncio", "uvloop")
    } | {"test_a_child_process_connects_off_loopback", "test_resolves_a_public_name"}, out
    assert errors == passed - {"test_stays_on_loopback[asyncio]",
                               "test_stays_on_loopback[uvloop]"}, out
    assert "tried 1 time(s) to reach an address other than loopback" in out
