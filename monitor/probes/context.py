"""What a probe may use besides its spec: shared, reusable, side-effect free objects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from monitor.auth import AuthError, TokenSource
from monitor.config import Probe
from monitor.redact import Redactor


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Shared by every run. ``session`` never reuses connections (each run measures a fresh
    connect), but reusing the session object itself saves its setup on every run."""

    session: aiohttp.ClientSession
    tokens: TokenSource
    redactor: Redactor

    async def token_for(self, probe: Probe) -> str | None:
        """The probe's bearer token, or None when it has no auth. Raises AuthError."""
        if probe.auth is None or probe.auth_name is None:
            return None
        return await self.tokens.token(probe.auth_name, probe.auth, self.session)


def new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(force_close=True, limit=0, ttl_dns_cache=None,
                                     use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                 cookie_jar=aiohttp.DummyCookieJar(),
                                 skip_auto_headers=("User-Agent",),
                                 headers={"User-Agent": "synthmon"})


def target_of(url: str) -> str:
    """The URL without credentials, query or fragment: the ``target`` label."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


__all__ = ["AuthError", "ProbeContext", "new_session", "target_of"]
