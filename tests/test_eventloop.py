"""The loop's exception handler keeps uvloop#437's orphaned connect errors out of stderr,
and everything else where asyncio's default handler puts it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import ssl
import time

import pytest

from monitor import eventloop


async def _orphan(exc: BaseException) -> None:
    # What uvloop leaves behind: a future whose exception is set after its awaiter is gone.
    fut = asyncio.get_running_loop().create_future()
    fut.set_exception(exc)
    del fut
    gc.collect()
    await asyncio.sleep(0)


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_an_orphaned_certificate_error_is_not_a_traceback(
        loop_name: str, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    eventloop.run(_orphan(ssl.SSLCertVerificationError(1, "certificate has expired")),
                  loop_name)
    eventloop.run(_orphan(ConnectionResetError(104, "reset by peer")), loop_name)
    captured = capsys.readouterr()
    assert "never retrieved" not in captured.err + captured.out + caplog.text
    assert "Traceback" not in captured.err + caplog.text


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_other_orphaned_errors_still_reach_the_default_handler(
        loop_name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="asyncio"):
        eventloop.run(_orphan(ValueError("a bug of ours")), loop_name)
    assert "Future exception was never retrieved" in caplog.text
    assert "a bug of ours" in caplog.text


# --------------------------------------------------------------------------- Ctrl-C


def _sigint_soon(loop: asyncio.AbstractEventLoop, after: float = 0.05) -> None:
    loop.call_later(after, os.kill, os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_ctrl_c_cancels_the_work_and_says_interrupted(loop_name: str) -> None:
    ended: list[str] = []

    async def work() -> str:
        _sigint_soon(asyncio.get_running_loop())
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        return "finished"

    t0 = time.monotonic()
    with pytest.raises(eventloop.Interrupted):
        eventloop.run(eventloop.interruptible(work(), give_up=lambda: ended.append("gave up")),
                      loop_name)
    assert ended == ["cancelled"] and time.monotonic() - t0 < 5
    # The loop's handler is gone again: Python's own is back for the rest of the process.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_work_that_ignores_the_cancel_is_given_up_after_the_grace(loop_name: str) -> None:
    gave_up: list[float] = []

    async def stubborn() -> str:
        loop = asyncio.get_running_loop()
        _sigint_soon(loop)
        t0 = loop.time()
        while loop.time() - t0 < 3:  # swallows every cancel, as a hung await might
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)
        return "finished"

    async def main() -> str:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        return await eventloop.interruptible(
            stubborn(), grace=0.3, give_up=lambda: gave_up.append(loop.time() - t0))

    assert eventloop.run(main(), loop_name) == "finished"
    assert len(gave_up) == 1 and 0.3 <= gave_up[0] < 2.5  # the grace after the SIGINT


def test_no_ctrl_c_no_difference() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert eventloop.run(eventloop.interruptible(work())) == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- address literals

LITERALS = ("127.0.0.1", "10.1.2.3", "0.0.0.0", "255.255.255.255", "127.1", "::1", "::",
            "fe80::1", "2001:db8::8:800:200c:417a", "::ffff:127.0.0.1")
NAMES = ("localhost", "example.invalid", "", "127.0.0.1.", "[::1]", "1.2.3.4.5", "::1::")


@pytest.mark.parametrize("host", LITERALS)
def test_an_address_literal_is_answered_as_the_c_library_answers_it(host: str) -> None:
    for family in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        for kind in (0, socket.SOCK_STREAM, socket.SOCK_DGRAM):
            for port in (0, 80, 65535, None):
                try:
                    expected = socket.getaddrinfo(host, port, family, kind)
                except socket.gaierror:
                    expected = None  # an IPv4 literal asked as IPv6, or the other way
                got = eventloop.numeric_addrinfo(host, port, family, kind, 0, 0)
                assert got == expected, (host, family, kind, port)
                # Asked again: the answer remembered, the same, in a list of its own.
                again = eventloop.numeric_addrinfo(host, port, family, kind, 0, 0)
                assert again == expected and (again is None or again is not got)


def test_a_remembered_answer_is_the_c_librarys_and_the_memory_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    getaddrinfo = socket.getaddrinfo

    def counted(host: str, *args: int) -> list[object]:
        asked.append(host)
        return getaddrinfo(host, *args)

    monkeypatch.setattr(eventloop, "_ANSWERS", {})
    monkeypatch.setattr(socket, "getaddrinfo", counted)
    first = eventloop.numeric_addrinfo("127.0.0.1", 8080, 0, 0, 0, 0)
    assert first is not None
    first.clear()  # a caller's list is its own
    assert eventloop.numeric_addrinfo("127.0.0.1", 8080, 0, 0, 0, 0) == \
        getaddrinfo("127.0.0.1", 8080)
    assert asked == ["127.0.0.1"]
    # An IPv6 scope names an interface, which may come and go: asked each time.
    for _ in range(2):
        eventloop.numeric_addrinfo("fe80::1%lo", 80, 0, 0, 0, 0)
    assert asked == ["127.0.0.1", "fe80::1%lo", "fe80::1%lo"]
    for port in range(eventloop.ANSWERS_MAX + 10):
        assert eventloop.numeric_addrinfo("127.0.0.1", port, 0, socket.SOCK_STREAM, 0, 0) \
            == getaddrinfo("127.0.0.1", port, 0, socket.SOCK_STREAM)
    assert 0 < len(eventloop._ANSWERS) <= eventloop.ANSWERS_MAX


@pytest.mark.parametrize("host", NAMES)
def test_anything_that_needs_a_lookup_is_left_to_the_loop(host: str) -> None:
    assert eventloop.numeric_addrinfo(host, 80, 0, 0, 0, 0) is None
    # A service name, a port out of range, AI_ADDRCONFIG (which reads the interfaces),
    # bytes: the loop's own path decides.
    assert eventloop.numeric_addrinfo("127.0.0.1", "http", 0, 0, 0, 0) is None
    assert eventloop.numeric_addrinfo("127.0.0.1", 70000, 0, 0, 0, 0) is None
    assert eventloop.numeric_addrinfo("127.0.0.1", 80, 0, 0, 0, socket.AI_ADDRCONFIG) is None
    assert eventloop.numeric_addrinfo(b"127.0.0.1", 80, 0, 0, 0, 0) is None


def test_uvloop_connects_to_an_address_literal_without_its_thread_pool() -> None:
    """What aiohttp does for every HTTP probe: ``loop.sock_connect`` to a resolved literal.
    uvloop's asks ``self.getaddrinfo``; if an upgrade stops asking, this fails, and the hook
    in monitor/eventloop.py can go."""
    factory = eventloop.loop_factory("uvloop")
    assert factory is not None

    async def connect() -> tuple[int, str, str]:
        loop = asyncio.get_running_loop()
        names = []
        with socket.create_server(("127.0.0.1", 0)) as server, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, server.getsockname())
            names = [sock.getpeername()[0], eventloop.current()]
        # A name still goes to uvloop's own resolver, and answers as before.
        assert await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM) == \
            socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        return getattr(loop, "numeric_answers", -1), names[0], names[1]

    with asyncio.Runner(loop_factory=factory) as runner:
        answers, peer, name = runner.run(connect())
    assert (answers, peer, name) == (1, "127.0.0.1", "uvloop")


@pytest.mark.parametrize("loop_name", eventloop.CHOICES)
def test_the_loop_is_named_as_chosen(loop_name: str) -> None:
    async def name() -> str:
        return eventloop.current()

    assert eventloop.run(name(), loop_name) == loop_name
