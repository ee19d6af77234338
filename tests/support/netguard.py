"""The egress guard: the test session runs in a network namespace of its own that has only
loopback, and every test fails that tried to reach any other address.

CPython's audit events see what asyncio's loop does, but uvloop (the daemon's default loop)
connects and resolves in libuv, below them, and child processes (daemons, the simulator,
Chromium) are not seen at all. The kernel sees everything: in a namespace whose only
interface is ``lo`` there is no route to any other address, so every attempt (a TCP
connect, a UDP send, a DNS query to the configured nameserver) fails at once with
ENETUNREACH and is counted in the namespace's ``OutNoRoutes`` (``/proc/net/snmp``, and
``Ip6OutNoRoutes`` in ``/proc/net/snmp6``). Nothing can leave, and the counters say who
tried: they are read around every test.

Entering the namespace needs CAP_SYS_ADMIN (root, as in CI). Without it the tests run
unguarded with a warning, and under CI (``CI`` set, as ``.ci/run`` is run) the session
fails instead: a CI run that checks no egress would pass for the wrong reason.
``SYNTHMON_TEST_NETNS=0`` turns the guard off on purpose (e.g. to watch a test's traffic).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def no_route_attempts() -> int:
    """How often this namespace found no route for an outgoing packet (IPv4 + IPv6)."""
    with open("/proc/self/net/snmp") as f:
        ip = [line.split() for line in f if line.startswith("Ip:")]
    v4 = int(dict(zip(ip[0], ip[1], strict=True))["OutNoRoutes"])
    with open("/proc/self/net/snmp6") as f:
        v6 = next(int(line.split()[1]) for line in f if line.startswith("Ip6OutNoRoutes"))
    return v4 + v6


def _bring_up_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def enter_loopback_only_namespace() -> str | None:
    """Move this process into a new network namespace with only ``lo`` (up).

    Returns None on success, else why not. Must run before any other thread starts: a
    namespace is per thread, and threads started later inherit the caller's."""
    if os.environ.get("SYNTHMON_TEST_NETNS") == "0":
        return "turned off by SYNTHMON_TEST_NETNS=0"
    if threading.active_count() != 1:
        return f"{threading.active_count()} threads run already"
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        return f"unshare(CLONE_NEWNET): {os.strerror(err)} (needs root or CAP_SYS_ADMIN)"
    _bring_up_loopback()
    return None
