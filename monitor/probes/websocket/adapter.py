"""The websockets adapter: the upgrade request the product's clients send (headers,
subprotocols, the token as a ``jwt.<base64url>`` subprotocol or query parameter) and the
call that opens one connection to one resolved address through websockets. The hooks
into websockets' internals that this relies on are in :mod:`monitor.probes.net.wsconn`.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers
from websockets.typing import Subprotocol

from monitor import __version__
from monitor.config import TokenPlacement, WebSocketSpec
from monitor.limits import WS_MAX_QUEUE
from monitor.probes.net.wsconn import NoRedirectConnect, Trace, TracedConnection

USER_AGENT = f"synthmon/{__version__}"
# A clean close waits at most this long for the server's close frame.
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class Request:
    """The upgrade request: URL (with a query token, if so configured), extra headers and
    offered subprotocols (with the token subprotocol, if so configured)."""

    url: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]


def token_subprotocol(token: str) -> str:
    """``jwt.`` + the token in base64url without padding, as the product's clients offer."""
    return "jwt." + base64.urlsafe_b64encode(token.encode()).decode("ascii").rstrip("=")


def _with_query_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def http_url(ws_url: str) -> str:
    """The http(s):// URL of the same resource, for the diagnostic GET."""
    parts = urlsplit(ws_url)
    return urlunsplit(parts._replace(scheme="https" if parts.scheme == "wss" else "http"))


def build_request(spec: WebSocketSpec, token: str | None,
                  placements: tuple[TokenPlacement, ...] | None = None,
                  extra_headers: tuple[tuple[str, str], ...] = (),
                  trace_headers: Mapping[str, str] | None = None) -> Request:
    """The upgrade request; ``placements`` overrides ``send_token_as`` (a negative probe's
    variant: nowhere, or the query only) and ``extra_headers`` are added (its bypass
    headers). ``trace_headers`` (the run's ``traceparent`` and ``tracestate``) replace any
    configured header of the same name: the result's trace id must be the one the server
    saw. The diagnostic GET sends the same headers."""
    url = spec.url
    headers = [*spec.headers.items(), *extra_headers]
    if trace_headers:
        names = {n.lower() for n in trace_headers}
        headers = [(n, v) for n, v in headers if n.lower() not in names]
        headers.extend(trace_headers.items())
    subprotocols = list(spec.subprotocols)
    where = spec.send_token_as if placements is None else placements
    if token is not None:
        if "authorization_header" in where:
            headers.append(("Authorization", f"Bearer {token}"))
        if "subprotocol" in where:
            subprotocols.append(token_subprotocol(token))
        if "query" in where:
            url = _with_query_token(url, token)
    return Request(url, tuple(headers), tuple(subprotocols))


async def open_connection(request: Request, family: socket.AddressFamily,
                          address: tuple[Any, ...], trace: Trace,
                          ssl_context: ssl.SSLContext | None, server_hostname: str,
                          max_size: int) -> TracedConnection:
    """Connect to ``address`` (a ``getaddrinfo`` sockaddr) and upgrade; websockets'
    exceptions propagate. The caller bounds the wait and sets the watcher; ``trace``
    records what the connection saw."""
    tls: dict[str, Any] = {}
    if ssl_context is not None:
        tls = {"ssl": ssl_context, "server_hostname": server_hostname}
    # The event loop connects (uvloop's native connect costs half of a socket connected by
    # hand); the address is the one resolved by the run, so the resolve phase stays the
    # run's and no proxy from the environment applies.
    ws = await NoRedirectConnect(
        request.url,
        host=address[0],
        port=address[1],
        family=family,
        proxy=None,
        additional_headers=Headers(request.headers),
        subprotocols=[Subprotocol(s) for s in request.subprotocols] or None,
        user_agent_header=USER_AGENT,
        open_timeout=None,
        ping_interval=None,
        ping_timeout=None,
        close_timeout=CLOSE_TIMEOUT,
        max_size=max_size,
        max_queue=WS_MAX_QUEUE,
        create_connection=cast(type[ClientConnection],
                               partial(TracedConnection, trace=trace)),
        **tls,
    )
    return cast(TracedConnection, ws)


__all__ = ["CLOSE_TIMEOUT", "USER_AGENT", "Request", "build_request", "http_url",
           "open_connection", "token_subprotocol"]
