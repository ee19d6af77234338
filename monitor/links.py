"""Where a person goes from a result: the probe's page on this synthmon, the run's trace.

``--external-url`` is the address people reach this daemon at (as Prometheus'
``--web.external-url``): the alert rules read it from ``synthmon_external_url_info`` and
link every page and ticket to ``<external url>probe/NAME``. ``--trace-url`` is a URL
template of the tracing backend with ``{trace_id}`` where the run's trace id goes (Tempo,
Jaeger, Honeycomb, ...): the status page, ``synthmon once`` and the JSON render a run's
trace id as that link. Pure: strings in, strings out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

TRACE_ID = "{trace_id}"
EXTERNAL_URL_ENV = "SYNTHMON_EXTERNAL_URL"
TRACE_URL_ENV = "SYNTHMON_TRACE_URL"


# The schemes a link may use (a browser opens them), not probe kinds.
_WEB_SCHEMES = frozenset({"http", "https"})


class LinkError(ValueError):
    """A link setting that cannot be used; the message says why, for the command line."""


def parse_external_url(value: str) -> str:
    """An absolute http(s) URL, normalised to end with ``/`` (paths are appended)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in _WEB_SCHEMES or not parts.netloc:
        raise LinkError(f"must be an http:// or https:// URL like https://synthmon.example.com/; "
                        f"got {value!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise LinkError(f"must be a URL without credentials, query or fragment; got {value!r}")
    return parts._replace(path=parts.path.rstrip("/") + "/").geturl()


def parse_trace_url(value: str) -> str:
    """A URL template with ``{trace_id}`` (once or more) and no other ``{...}``."""
    text = value.strip()
    parts = urlsplit(text.replace(TRACE_ID, "0" * 32))
    if parts.scheme not in _WEB_SCHEMES or not parts.netloc:
        raise LinkError(f"must be an http:// or https:// URL template; got {value!r}")
    if TRACE_ID not in text:
        raise LinkError(f"must contain {TRACE_ID} where the trace id goes, like "
                        f"https://tempo.example.com/trace/{TRACE_ID}; got {value!r}")
    if "{" in text.replace(TRACE_ID, "") or "}" in text.replace(TRACE_ID, ""):
        raise LinkError(f"{TRACE_ID} is the only placeholder; got {value!r}")
    return text


@dataclass(frozen=True, slots=True)
class Links:
    external_url: str | None = None  # normalised: ends with "/"
    trace_url: str | None = None     # a template with {trace_id}

    def probe(self, key: str) -> str | None:
        """The page of a probe (``probe`` or ``probe@variant``) on this daemon."""
        if self.external_url is None:
            return None
        return f"{self.external_url}probe/{quote(key, safe='@:')}"

    def trace(self, trace_id: str | None) -> str | None:
        """The trace of a run in the tracing backend; None without a template or an id.
        A trace id is 32 hex digits (monitor.trace): nothing in it needs escaping."""
        if self.trace_url is None or not trace_id:
            return None
        return self.trace_url.replace(TRACE_ID, quote(trace_id, safe=""))


NO_LINKS = Links()


def links_from(external_url: str | None, trace_url: str | None,
               environ: Mapping[str, str] | None = None) -> Links:
    """The links of the command-line values, or of ``SYNTHMON_EXTERNAL_URL`` /
    ``SYNTHMON_TRACE_URL`` when a value is not given. Raises :class:`LinkError`."""
    env = os.environ if environ is None else environ
    external = external_url if external_url is not None else env.get(EXTERNAL_URL_ENV) or None
    trace = trace_url if trace_url is not None else env.get(TRACE_URL_ENV) or None
    try:
        url = parse_external_url(external) if external else None
    except LinkError as exc:
        where = "--external-url" if external_url is not None else EXTERNAL_URL_ENV
        raise LinkError(f"{where}: {exc}") from None
    try:
        template = parse_trace_url(trace) if trace else None
    except LinkError as exc:
        where = "--trace-url" if trace_url is not None else TRACE_URL_ENV
        raise LinkError(f"{where}: {exc}") from None
    return Links(url, template)
