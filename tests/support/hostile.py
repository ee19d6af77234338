"""Misbehaving servers on loopback, shared by the fault, shutdown, secret and soak tests.

Raw asyncio servers, because a framework is too polite to hang mid-header, trickle a
response a byte a second, reset a handshake or answer an upgrade with a wrong key. Every
fault has its own port. The whole set ("the zoo") can run in this process or in a child
process (``python -m tests.support.hostile DIR``), so that a test can measure the probing side
alone (memory, file descriptors, scheduling) without the servers' work in the same loop.

Every server listens on 127.0.0.1 only, and every loop here is bounded: by the client going
away, by a byte count, or by the server being stopped (hangs are cancelled on close).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.procs import stop_process

ROOT = Path(__file__).resolve().parent.parent.parent
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
GIB = 1 << 30
MIB = 1 << 20
# A hang lasts at most this long: far beyond any probe timeout in the tests, and still an
# end if a client never goes away.
HANG = 60.0

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Cert:
    cert_file: Path
    key_file: Path
    not_after: dt.datetime


def make_cert(directory: Path, names: list[str], *, stem: str = "cert",
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Cert:
    """A self-signed EC certificate (its own CA) for ``names`` (DNS names or IPs)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    not_before = not_before or now - dt.timedelta(minutes=1)
    not_after = not_after or now + dt.timedelta(days=30)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Cert(cert_file, key_file, not_after)


def server_context(cert: Cert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def zoo_certs(directory: Path) -> dict[str, Cert]:
    """The three bad certificates: untrusted, expired (trust it via ca_file to see the
    expiry), issued for another host (trust it via ca_file to see the name mismatch)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "self_signed": make_cert(directory, ["127.0.0.1", "localhost"], stem="self_signed"),
        "expired": make_cert(directory, ["127.0.0.1", "localhost"], stem="expired",
                             not_before=now - dt.timedelta(days=60),
                             not_after=now - dt.timedelta(days=1)),
        "wrong_host": make_cert(directory, ["other.example"], stem="wrong_host"),
    }


# --------------------------------------------------------------------------- raw protocol


async def read_request(reader: asyncio.StreamReader) -> dict[str, str]:
    """Read one request head; its headers with lower-case names."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def switching_protocols(headers: dict[str, str], accept: str | None = None) -> bytes:
    accept = accept if accept is not None else ws_accept(headers.get("sec-websocket-key", ""))
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n")


def frame_head(opcode: int, length: int, fin: bool = True) -> bytes:
    """An unmasked (server to client) frame header."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, length])
    if length < 1 << 16:
        return bytes([first, 126]) + struct.pack("!H", length)
    return bytes([first, 127]) + struct.pack("!Q", length)


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return frame_head(opcode, len(payload), fin) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame (masked): (opcode, payload)."""
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (linger 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def pump(writer: asyncio.StreamWriter, total: int | None, chunk: bytes,
               encode: Callable[[bytes], bytes] = lambda c: c) -> None:
    """Write ``chunk`` until ``total`` bytes (None: until the client goes) or HANG seconds."""
    sent = 0
    end = time.monotonic() + HANG
    while (total is None or sent < total) and time.monotonic() < end:
        piece = chunk if total is None else chunk[:total - sent]
        writer.write(encode(piece))
        await writer.drain()
        sent += len(piece)


# --------------------------------------------------------------------------- handlers

HEALTHY_BODY = b'{"status": "healthy"}'


async def _silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(HANG)  # accept, read nothing, say nothing


async def _http_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(HEALTHY_BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
                 + HEALTHY_BODY)
    await writer.drain()


async def _http_mid_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _http_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b'{"status": "hea')
    await writer.drain()
    await asyncio.sleep(HANG)


async def _trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
    for i in range(len(data)):  # one byte a second: bounded by the data's length
        writer.write(data[i:i + 1])
        await writer.drain()
        await asyncio.sleep(1.0)


async def _http_slowloris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await _trickle(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n" + HEALTHY_BODY)


async def _http_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
    await writer.drain()
    await asyncio.sleep(0.05)
    rst(writer)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff\xfe garbage \x1b[31m\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _http_gigabyte(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 b"Content-Length: " + str(GIB).encode() + b"\r\n\r\n")
    await pump(writer, GIB, b"\0" * (256 * 1024))


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _http_endless_chunked(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    await pump(writer, None, b"x" * (64 * 1024), _chunk)


async def _ws_connect_message(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x1, b'{"type": "connect"}'))
    await writer.drain()


async def _ws_until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          answer: bool = True) -> None:
    """Read client frames until its close frame (answered unless ``answer`` is False)."""
    end = time.monotonic() + HANG
    while time.monotonic() < end:
        opcode, payload = await reader_frame_or_eof(reader)
        if opcode < 0:
            return
        if opcode == 0x8:
            if answer:
                writer.write(frame(0x8, payload[:2]))
                await writer.drain()
                return
            await asyncio.sleep(HANG)  # never answers the close, never closes
        if opcode == 0x9:
            writer.write(frame(0xA, payload))
            await writer.drain()


async def reader_frame_or_eof(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    try:
        return await read_frame(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return -1, b""


async def _ws_healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers))
    await _ws_connect_message(writer)
    await _ws_until_close(reader, writer)


async def _ws_mid_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnec")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _ws_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade, then a text frame that announces 1000 bytes and stops after 15."""
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + frame_head(0x1, 1000) + b'{"type": "conne')
    await writer.drain()
    await asyncio.sleep(HANG)


async def _ws_slowloris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    await _trickle(writer, switching_protocols(headers))


async def _ws_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
    await writer.drain()
    await asyncio.sleep(0.05)
    rst(writer)


async def _ws_gigabyte_answer(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
    """A 200 (no upgrade) with a 1 GiB body, to the upgrade and to the diagnostic GET."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(GIB).encode() + b"\r\n\r\n")
    await pump(writer, GIB, b" " * (256 * 1024))


async def _ws_endless_chunked_answer(reader: asyncio.StreamReader,
                                     writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    await pump(writer, None, b" " * (64 * 1024), _chunk)


async def _ws_gigabyte_message(reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + frame_head(0x1, GIB))
    await pump(writer, GIB, b" " * (256 * 1024))


async def _ws_endless_fragments(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
    """A text message in 128 KiB fragments that never ends (FIN never set)."""
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + frame(0x1, b" " * 131072, fin=False))
    await pump(writer, None, b" " * 131072, lambda c: frame(0x0, c, fin=False))


async def _ws_wrong_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers, accept=ws_accept("not-the-key")))
    await writer.drain()
    await asyncio.sleep(HANG)


async def _ws_close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + close_frame(1000, "bye"))
    await writer.drain()
    end = time.monotonic() + HANG  # wait for the client's answer, then hang up
    while time.monotonic() < end and (await reader_frame_or_eof(reader))[0] not in (-1, 0x8):
        pass


async def _ws_drop_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers))
    await writer.drain()  # then the connection ends without a close frame


async def _ws_binary(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + frame(0x2, b"\x00\x01\x02\xff"))
    await _ws_until_close(reader, writer)


async def _ws_16mb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers) + frame_head(0x1, 16 * MIB))
    await pump(writer, 16 * MIB, b"x" * (256 * 1024))
    await _ws_until_close(reader, writer)


async def _ws_ping_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pings as fast as the socket takes them; the expected message comes after 300 ms,
    in the middle of the flood, which goes on until the client's close frame."""
    headers = await read_request(reader)
    writer.write(switching_protocols(headers))
    closed = asyncio.Event()

    async def read_pongs() -> None:
        end = time.monotonic() + HANG
        while time.monotonic() < end:
            opcode, payload = await reader_frame_or_eof(reader)
            if opcode in (-1, 0x8):
                if opcode == 0x8:
                    writer.write(frame(0x8, payload[:2]))
                closed.set()
                return

    pongs = asyncio.create_task(read_pongs())
    ping = frame(0x9, b"p" * 125)
    start = time.monotonic()
    sent_message = False
    try:
        while not closed.is_set() and time.monotonic() - start < HANG:
            writer.write(ping * 64)
            if not sent_message and time.monotonic() - start > 0.3:
                await _ws_connect_message(writer)
                sent_message = True
            await writer.drain()
            await asyncio.sleep(0)
    finally:
        pongs.cancel()
        with contextlib.suppress(BaseException):
            await pongs


async def _ws_deaf_to_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    headers = await read_request(reader)
    writer.write(switching_protocols(headers))
    await _ws_connect_message(writer)
    await _ws_until_close(reader, writer, answer=False)


# --------------------------------------------------------------------------- floods
# One hostile target at full speed (issue 20): what synthmon keeps of it must stay bounded
# (frames, types, headers, the detail, the log line) and its run must end at its timeout.

FLOOD_BATCH = 512  # frames built and written at once: the socket, not Python, sets the pace
WIDE_TYPE = 60 * 1024  # the "60 KB frames of new types" flood: each type is this long


async def _ws_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    message: Callable[[int], bytes], batch: int) -> None:
    """Upgrade, the welcome, then text frames as fast as the socket takes them, each one
    ``message(n)`` (a new type every time), until the client goes or HANG seconds."""
    headers = await read_request(reader)
    writer.write(switching_protocols(headers))
    await _ws_connect_message(writer)
    gone = asyncio.Event()

    async def until_close() -> None:  # the client's close is never answered
        end = time.monotonic() + HANG
        while time.monotonic() < end and (await reader_frame_or_eof(reader))[0] not in (-1, 8):
            pass
        gone.set()

    watcher = asyncio.create_task(until_close())
    n = 0
    end = time.monotonic() + HANG
    try:
        while not gone.is_set() and time.monotonic() < end:
            writer.write(b"".join(frame(0x1, message(n + i)) for i in range(batch)))
            n += batch
            await writer.drain()
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher


def _small_event(n: int) -> bytes:
    return b'{"type": "flood_%d", "seq": %d}' % (n, n)


_WIDE_PAD = b"x" * WIDE_TYPE


def _wide_event(n: int) -> bytes:
    return b'{"type": "%d-' % n + _WIDE_PAD + b'"}'


async def _ws_flood_small(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _ws_flood(reader, writer, _small_event, FLOOD_BATCH)


async def _ws_flood_wide(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _ws_flood(reader, writer, _wide_event, 8)


MANY_HEADERS = 100  # aiohttp's client refuses more than 128 header lines
HEADER_BYTES = 8000  # and lines over 8190 bytes


async def _http_many_headers(reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
    """A failing answer (500) with 100 headers of 8 KB each: ~800 KB a run."""
    await read_request(reader)
    head = b"".join(b"X-Filler-%d: %s\r\n" % (i, (b"%d" % i) * (HEADER_BYTES // len(b"%d" % i)))
                    for i in range(MANY_HEADERS))
    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n" + head
                 + b"Content-Length: 4\r\nConnection: close\r\n\r\nfail")
    await writer.drain()


_BOMB: list[bytes] = []
_BOMB_LOCK = threading.Lock()
BOMB_BYTES = 256 * MIB  # what the gzip body inflates to


def gzip_bomb() -> bytes:
    """~250 KB of gzip inflating to 256 MiB of zeros, made once (about a second: the zoo
    starts making it in a thread as it starts, so that no answer waits for it)."""
    with _BOMB_LOCK:
        if not _BOMB:
            import zlib
            comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
            zeros = bytes(MIB)
            parts = [comp.compress(zeros) for _ in range(BOMB_BYTES // MIB)]
            _BOMB.append(b"".join(parts) + comp.flush())
        return _BOMB[0]


async def _http_gzip_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A gzip body of ~250 KB that inflates to 256 MiB of zeros."""
    await read_request(reader)
    body = await asyncio.to_thread(gzip_bomb)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()


async def _tls_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the start of the client's TLS hello, then reset: a reset mid TLS handshake."""
    await reader.read(5)
    rst(writer)


# name → (handler, TLS certificate name or None). "refused" is a bound port with no listener.
FAULTS: dict[str, tuple[Handler, str | None]] = {
    "http/healthy": (_http_healthy, None),
    "http/silence": (_silence, None),
    "http/mid_headers": (_http_mid_headers, None),
    "http/mid_body": (_http_mid_body, None),
    "http/slowloris": (_http_slowloris, None),
    "http/reset": (_http_reset, None),
    "http/garbage": (_garbage, None),
    "http/gigabyte": (_http_gigabyte, None),
    "http/endless_chunked": (_http_endless_chunked, None),
    "http/tls_reset": (_tls_reset, None),
    "http/tls_self_signed": (_http_healthy, "self_signed"),
    "http/tls_expired": (_http_healthy, "expired"),
    "http/tls_wrong_host": (_http_healthy, "wrong_host"),
    "ws/healthy": (_ws_healthy, None),
    "ws/silence": (_silence, None),
    "ws/mid_headers": (_ws_mid_headers, None),
    "ws/mid_body": (_ws_mid_body, None),
    "ws/slowloris": (_ws_slowloris, None),
    "ws/reset": (_ws_reset, None),
    "ws/garbage": (_garbage, None),
    "ws/gigabyte_answer": (_ws_gigabyte_answer, None),
    "ws/endless_chunked_answer": (_ws_endless_chunked_answer, None),
    "ws/gigabyte_message": (_ws_gigabyte_message, None),
    "ws/endless_fragments": (_ws_endless_fragments, None),
    "ws/wrong_accept": (_ws_wrong_accept, None),
    "ws/close_at_once": (_ws_close_at_once, None),
    "ws/drop_at_once": (_ws_drop_at_once, None),
    "ws/binary": (_ws_binary, None),
    "ws/16mb": (_ws_16mb, None),
    "ws/ping_flood": (_ws_ping_flood, None),
    "ws/deaf_to_close": (_ws_deaf_to_close, None),
    "ws/tls_reset": (_tls_reset, None),
    "ws/flood_small": (_ws_flood_small, None),
    "ws/flood_wide": (_ws_flood_wide, None),
    "http/many_headers": (_http_many_headers, None),
    "http/gzip_bomb": (_http_gzip_bomb, None),
    "ws/tls_self_signed": (_ws_healthy, "self_signed"),
    "ws/tls_expired": (_ws_healthy, "expired"),
    "ws/tls_wrong_host": (_ws_healthy, "wrong_host"),
}


# --------------------------------------------------------------------------- servers


@contextlib.asynccontextmanager
async def raw_server(handle: Handler, host: str = "127.0.0.1",
                     tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve ``handle`` on a free loopback port; yields the port. Handlers still hanging
    when the block ends are cancelled; a client that went away is not an error."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            # Stopped by the end of the block. Python 3.11's start_server callback calls
            # task.exception() on a cancelled handler and logs a traceback: end normally.
            pass
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(wrapped, host, 0, ssl=tls)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


def closed_port() -> socket.socket:
    """A loopback port bound without a listener: connecting to it is refused, and nobody
    else can take it while the socket is open."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def zoo(tls_dir: Path, names: list[str] | None = None) -> AsyncIterator[dict[str, int]]:
    """Every fault server in this loop; yields name → port (with "refused")."""
    certs = zoo_certs(tls_dir)
    async with contextlib.AsyncExitStack() as stack:
        if names is None or "http/gzip_bomb" in names:
            bomb = asyncio.ensure_future(asyncio.to_thread(gzip_bomb))
            stack.push_async_callback(asyncio.wait_for, bomb, 30)
        ports: dict[str, int] = {}
        for name, (handler, cert) in FAULTS.items():
            if names is not None and name not in names:
                continue
            tls = server_context(certs[cert]) if cert else None
            ports[name] = await stack.enter_async_context(raw_server(handler, tls=tls))
        refused = stack.enter_context(closed_port())
        ports["refused"] = int(refused.getsockname()[1])
        yield ports


@dataclass
class ZooProc:
    """The zoo in a child process: ``url(name, scheme)`` and the certificates' paths."""

    proc: subprocess.Popen[str]
    ports: dict[str, int]
    tls_dir: Path

    def url(self, name: str, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[name]}{path}"

    def cert(self, name: str) -> Path:
        return self.tls_dir / f"{name}.pem"

    def stop(self) -> None:
        stop_process(self.proc)


@contextlib.contextmanager
def zoo_process(tls_dir: Path) -> Iterator[ZooProc]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.hostile", str(tls_dir)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()  # the child prints its ports once it listens
        if not line:
            raise AssertionError(f"the hostile zoo did not start (exit {proc.wait(10)})")
        z = ZooProc(proc, json.loads(line), tls_dir)
        yield z
    finally:
        stop_process(proc)


async def _serve_forever(tls_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with zoo(tls_dir) as ports:
        print(json.dumps(ports), flush=True)
        await stop.wait()


# --------------------------------------------------------------------------- in a thread


class ThreadedServers:
    """aiohttp apps and raw handlers served from a loop in a background thread, for tests
    whose own thread blocks (a daemon or a CLI in a subprocess, urllib requests)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stack = contextlib.AsyncExitStack()

    def call(self, coro: Awaitable[T], timeout: float = 10.0) -> T:
        async def wrap() -> T:
            return await coro
        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)

    def app(self, app: web.Application, host: str = "127.0.0.1") -> int:
        async def start() -> int:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            self._stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, host, 0)
            await site.start()
            return int(runner.addresses[-1][1])
        return self.call(start())

    def raw(self, handler: Handler, tls: ssl.SSLContext | None = None) -> int:
        return self.call(self._stack.enter_async_context(raw_server(handler, tls=tls)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self._stack.aclose(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


# --------------------------------------------------------------------------- measuring


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size now (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


if __name__ == "__main__":
    asyncio.run(_serve_forever(Path(sys.argv[1])))
