"""Who may ask the daemon to change something: no page of another site, no page reached by
a name the daemon does not answer to.

A page of any origin can make a browser send a "simple" request (a form POST, or
``fetch(url, {method: "POST", mode: "no-cors"})``) to ``http://127.0.0.1:9115/-/reload``: the
browser does not let the page read the answer, but the daemon acts on it all the same. And
through DNS rebinding, a page of ``http://evil.example:9115/`` whose name comes to resolve to
127.0.0.1 is same-origin with the daemon as far as the browser knows, so it may read every
page as well. The defence is the one browsers make possible:

- a request that changes state (any method but GET, HEAD and OPTIONS) is refused when
  ``Sec-Fetch-Site`` says it comes from another site or origin (``cross-site``,
  ``same-site``: another port of the same host is same-site, not same-origin), or when its
  ``Origin`` is not the daemon's own (``null``, from a sandboxed frame or a ``data:`` page,
  included). Clients that are not browsers (Prometheus, curl, scripts) send neither
  header and are not affected: a script cannot be tricked into crossing origins. Browsers
  send ``Origin`` with every POST (and ``Sec-Fetch-Site`` to loopback and https).
- any request whose ``Host`` is a name the daemon does not answer to is refused, on every
  endpoint: a page reached through DNS rebinding sends its own name, and over plain http
  to a name a browser sends no ``Sec-Fetch-Site``, nor an ``Origin`` on a GET, so only the
  name tells it apart. The daemon answers to IP addresses, ``localhost`` (and
  ``*.localhost``), the machine's own names, the name it listens on, and the names given
  with ``--allowed-host`` (``--allowed-host '*'`` turns the check off, behind a proxy that
  checks names itself). A request without ``Host`` (HTTP/1.0) names nothing to rebind.

:func:`judge` decides from the request's facts alone (table-tested without sockets);
:func:`middleware` applies it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refusal(Enum):
    """Why a request was refused; the value is what the answer says (nothing of the
    request itself is echoed)."""

    HOST = ("this daemon does not answer to that host name (a page reached through another "
            "name, e.g. by DNS rebinding); if you reach it by that name, start it with "
            "--allowed-host NAME")
    CROSS_SITE = ("refused: a request from a page of another site or origin cannot change "
                  "this daemon's state (use curl, or the daemon's own origin)")


@dataclass(frozen=True)
class Facts:
    """What the decision reads of a request."""

    method: str
    scheme: str  # http or https, as the daemon serves it
    host: str | None  # the Host header as sent
    origin: str | None  # the Origin header
    fetch_site: str | None  # Sec-Fetch-Site


def judge(facts: Facts, allowed: AllowedHosts) -> Refusal | None:
    """None when the request may go on; otherwise why not (see the module docstring)."""
    host = split_host(facts.host, facts.scheme) if facts.host is not None else None
    if facts.host is not None and (host is None or not allowed.allows(host[0])):
        return Refusal.HOST
    if facts.method.upper() in SAFE_METHODS:
        return None
    site = (facts.fetch_site or "").strip().lower()
    if facts.fetch_site is not None and site not in ("same-origin", "none"):
        return Refusal.CROSS_SITE
    if facts.origin is not None and (
            host is None or _origin(facts.origin) != (facts.scheme.lower(), *host)):
        return Refusal.CROSS_SITE
    return None


def split_host(value: str, scheme: str) -> tuple[str, int] | None:
    """``Host`` (``name``, ``name:port``, ``[v6]:port``) as a lower-case name or address and
    a port (the scheme's default when none is written); None when it cannot be read."""
    value = value.strip()
    if not value or any(c in value for c in "/\\@?#\x00 \t\r\n"):
        return None
    try:
        parts = urlsplit(f"{scheme}://{value}")
        port = parts.port
    except ValueError:
        return None
    name = parts.hostname
    if not name:
        return None
    return name.rstrip(".").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def _origin(value: str) -> tuple[str, str, int] | None:
    """An Origin header as (scheme, host, port); None for ``null`` and anything else that
    is not a scheme://host[:port] origin."""
    value = value.strip()
    if value.lower() == "null":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return scheme, parts.hostname.rstrip(".").lower(), port or _DEFAULT_PORTS[scheme]


class AllowedHosts:
    """The names a browser may reach the daemon by (IP addresses always)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = frozenset(n.strip().rstrip(".").lower() for n in names if n.strip())
        self.any = "*" in self.names  # the check is off

    @classmethod
    def for_listen(cls, listen_host: str, extra: Iterable[str] = ()) -> AllowedHosts:
        """The defaults (``localhost``, this machine's names, the listen address's name if it
        is one) and ``extra``."""
        names = {socket.gethostname()}
        with contextlib.suppress(OSError):
            names.add(socket.getfqdn())
        if listen_host and not _is_ip(listen_host):
            names.add(listen_host)
        return cls([*names, *extra])

    def allows(self, host: str) -> bool:
        return (self.any or _is_ip(host) or host == "localhost" or host.endswith(".localhost")
                or host in self.names)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


LOG_EVERY = 10.0  # seconds: at most one log line a reason in this time, with a count


def middleware(allowed: AllowedHosts) -> Middleware:
    """The guard, to go first: a refused request costs no password check."""
    log = structlog.get_logger("synthmon")
    last: dict[Refusal, float] = {}
    unsaid: dict[Refusal, int] = {}

    def note(refusal: Refusal, request: web.Request) -> None:
        # Said at most once a LOG_EVERY a reason: anyone can send an Origin header, and a
        # flood of refusals must not become a flood of log lines. What the request said is
        # not logged but its method and raw path (the sender's text, kept short).
        unsaid[refusal] = unsaid.get(refusal, 0) + 1
        now = time.monotonic()
        if now - last.get(refusal, -LOG_EVERY) < LOG_EVERY:
            return
        last[refusal] = now
        log.warning("request_refused", reason=refusal.name.lower(),
                    method=request.method[:16], path=request.raw_path[:200],
                    refused=unsaid.pop(refusal))

    @web.middleware
    async def same_origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = judge(Facts(method=request.method, scheme=request.scheme,
                              host=request.headers.get("Host"),
                              origin=request.headers.get("Origin"),
                              fetch_site=request.headers.get("Sec-Fetch-Site")), allowed)
        if refusal is None:
            return await handler(request)
        note(refusal, request)
        return web.Response(status=403, text=f"403 Forbidden: {refusal.value}\n",
                            headers={"Vary": "Origin, Sec-Fetch-Site",
                                     "Cache-Control": "no-store"})
    return same_origin_only


__all__ = ["LOG_EVERY", "SAFE_METHODS", "AllowedHosts", "Facts", "Refusal", "judge",
           "middleware", "split_host"]
