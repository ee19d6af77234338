"""The sockets the HTTP session connects with (aiohttp's public ``socket_factory``).

``socket.socket``'s ``family`` and ``type`` turn the C socket's numbers into
``AddressFamily`` / ``SocketKind`` members in Python, through the enum's ``__call__``, each
time they are read: ~6,500 instructions a read (cachegrind), and uvloop reads them four
times a connect (``sock_connect`` twice, ``create_connection(sock=...)`` once each), ~26,000
of a run's ~700,000. :class:`ProbeSocket` gives the same members, remembered by the C
socket's number (a handful of values), for ~2,000 a read. Everything else is
``socket.socket``'s.
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

from aiohappyeyeballs import AddrInfoType

_RAW_FAMILY: Any = _socket.socket.family.__get__  # the C socket's number, as an int
_RAW_TYPE: Any = _socket.socket.type.__get__
_FAMILY: Any = socket.socket.family.__get__  # socket.socket's member (or int) for it
_TYPE: Any = socket.socket.type.__get__
# What socket.socket answered for each number (its answer depends on the number alone).
_FAMILIES: dict[int, Any] = {}
_TYPES: dict[int, Any] = {}


def _remembered(sock: socket.socket, raw: Any, full: Any, known: dict[int, Any]) -> Any:
    """``full(sock)`` (socket.socket's member), remembered by ``raw(sock)`` (its number)."""
    number = raw(sock)
    member = known.get(number)
    if member is None:
        member = known[number] = full(sock)
    return member


class ProbeSocket(socket.socket):
    """``socket.socket`` whose ``family`` and ``type`` are read for less."""

    __slots__ = ()

    @property
    def family(self) -> socket.AddressFamily:
        return _remembered(self, _RAW_FAMILY, _FAMILY, _FAMILIES)  # type: ignore[no-any-return]

    @property
    def type(self) -> socket.SocketKind:
        return _remembered(self, _RAW_TYPE, _TYPE, _TYPES)  # type: ignore[no-any-return]


def open_socket(addr_info: AddrInfoType) -> socket.socket:
    """The socket aiohappyeyeballs would open for ``addr_info``
    (``socket.socket(family=, type=, proto=)``), as a :class:`ProbeSocket`."""
    family, type_, proto, _, _ = addr_info
    return ProbeSocket(family=family, type=type_, proto=proto)


__all__ = ["ProbeSocket", "open_socket"]
