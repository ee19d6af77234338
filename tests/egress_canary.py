"""Run by tests/test_egress_guard.py in a pytest of its own (not collected by the suite):
tests that reach, or only try to reach, a non-loopback address, on both event loops."""

from __future__ import annotations

import asyncio
import socket

import pytest

pytestmark = pytest.mark.both_loops

# TEST-NET-1 and the IPv6 documentation prefix: never anyone's real address.
TARGETS = [("192.0.2.1", 80), ("2001:db8::1", 80)]


@pytest.mark.parametrize("host,port", TARGETS)
async def test_connects_off_loopback(host: str, port: int) -> None:
    with pytest.raises(OSError):  # no route: the guard has to see it all the same
        await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)


async def test_sends_a_datagram_off_loopback() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(OSError):
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("192.0.2.1", 53))
        transport.sendto(b"\0")
        transport.close()


async def test_stays_on_loopback() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    server.close()
    await server.wait_closed()


def test_a_child_process_connects_off_loopback() -> None:
    import subprocess
    import sys
    subprocess.run([sys.executable, "-c",
                    "import socket; socket.socket().connect_ex(('192.0.2.1', 80))"],
                   check=True, timeout=30)


def test_resolves_a_public_name() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("synthmon-canary.example.com", 80)
