"""Cookies for one run only: the shared session's jar hands each run a jar of its own.

A login, SSO or "cookie check" redirect sets a cookie on its 302 and expects it back at the
redirect's target, as a browser sends it. aiohttp follows redirects inside one request and
keeps cookies only in the session's jar; the one session every probe shares must never
carry one probe's cookies to another probe, nor one run's to the next. So the session's
jar (:class:`PerRunCookieJar`) stores nothing itself: inside :func:`run_cookies` it works
on that run's own jar, found through a contextvar as the watcher is
(:mod:`monitor.probes.net.watch`), and outside one it is aiohttp's ``DummyCookieJar``
(token requests, the WebSocket probe's diagnostic GET).

The run's jar is ``aiohttp.CookieJar(unsafe=True)``, so that cookies of IP-address hosts
(loopback, staging reached by IP) are kept as a browser keeps them; it is made only when
the first cookie arrives, so a run without cookies costs a contextvar set and reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar, Token
from http.cookies import BaseCookie, SimpleCookie

import aiohttp
from aiohttp.abc import AbstractCookieJar
from aiohttp.typedefs import LooseCookies
from yarl import URL


class RunCookies:
    """The holder of one run's jar, made on the first cookie."""

    __slots__ = ("jar",)

    def __init__(self) -> None:
        self.jar: AbstractCookieJar | None = None

    def writable(self) -> AbstractCookieJar:
        if self.jar is None:
            self.jar = aiohttp.CookieJar(unsafe=True)
        return self.jar


_NO_URL = URL()  # aiohttp's own default: cookies not tied to a response
_RUN: ContextVar[RunCookies | None] = ContextVar("synthmon_run_cookies", default=None)


class PerRunCookieJar(aiohttp.DummyCookieJar):
    """The session's jar: the run's own jar inside :func:`run_cookies`, none outside."""

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        if (run := _RUN.get()) is not None:
            run.writable().update_cookies(cookies, response_url)

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        if headers and (run := _RUN.get()) is not None:
            run.writable().update_cookies_from_headers(headers, response_url)

    def filter_cookies(self, request_url: URL) -> BaseCookie[str]:
        run = _RUN.get()
        if run is None or run.jar is None:
            return SimpleCookie()
        return run.jar.filter_cookies(request_url)


class run_cookies:  # lower case: used as the function it was
    """``with run_cookies() as run:`` a fresh jar for the requests made inside, dropped at
    the end. A class rather than a generator made a context manager: entered on every run,
    at a fifth of the cost."""

    __slots__ = ("_run", "_token")

    def __init__(self) -> None:
        self._run = RunCookies()
        self._token: Token[RunCookies | None] | None = None

    def __enter__(self) -> RunCookies:
        self._token = _RUN.set(self._run)
        return self._run

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _RUN.reset(self._token)
            self._token = None


__all__ = ["PerRunCookieJar", "RunCookies", "run_cookies"]
