"""One HTTP request as a probe sends it, built from a :class:`~monitor.config.RequestSpec`
and the run's credential and trace context: shared by the kinds that make a plain request
(``http``, a stream's), and by a flow's steps of those kinds.

Pure: the spec, the credential and the trace in, the arguments of one aiohttp request out.
Sending it, and timing it, is the caller's.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict

from monitor.auth.variants import Credential
from monitor.config import RequestSpec
from monitor.frozen import fast_init
from monitor.probes.tls import client_context
from monitor.trace import TraceContext

# aiohttp's own timeouts stay off: the probe's deadline is the only clock, so that a
# timeout is always reported with the phase it hit.
NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None,
                                   sock_read=None)


@fast_init
@dataclass(frozen=True, slots=True)
class Prepared:
    """The arguments of :meth:`aiohttp.ClientSession.request` for one probe request."""

    method: str
    url: str
    headers: CIMultiDict[str]
    tls: ssl.SSLContext | bool
    server_hostname: str | None
    body: dict[str, Any] = field(default_factory=dict)  # json= or data=, or nothing
    token: str | None = None  # the credential sent, to spot it reflected in the answer


def with_query(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (name, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def prepare(spec: RequestSpec, credential: Credential, trace: TraceContext | None, *,
            defaults: dict[str, str] | None = None, tls_always: bool = False) -> Prepared:
    """The request ``spec`` describes, with ``credential`` where it goes (Bearer by
    default; a variant's placement otherwise) and the run's trace context. ``defaults``
    are headers sent unless the spec sets them (a stream's ``Accept``). Raises
    :class:`~monitor.probes.tls.TlsConfigError` for TLS settings that cannot be used;
    ``tls_always`` builds the TLS context for an http:// URL too (a redirect may lead to
    https://)."""
    headers: CIMultiDict[str] = CIMultiDict(defaults or {})
    for name, value in spec.headers.items():
        headers[name] = value
    if credential.headers:
        headers.update(credential.headers)
    if trace is not None:
        # The run's trace context replaces any traceparent written in the config: the
        # result's trace id must be the one the target saw.
        headers.update(trace.headers())
    token = credential.token
    placements = ("authorization_header",) if credential.placements is None \
        else credential.placements
    url = spec.url
    if token is not None and "authorization_header" in placements:
        headers["Authorization"] = f"Bearer {token}"
    if token is not None and "query" in placements:
        url = with_query(url, "token", token)
    body: dict[str, Any] = {}
    if spec.json_body is not None:
        body["json"] = spec.json_body
    elif spec.body is not None:
        body["data"] = spec.body.encode("utf-8")
    tls: ssl.SSLContext | bool = True
    if spec.url.lower().startswith("https:") or tls_always:
        tls = client_context(spec.tls)
    return Prepared(spec.method, url, headers, tls, spec.tls.server_name, body, token)


__all__ = ["NO_TIMEOUT", "Prepared", "prepare", "with_query"]
