"""The ``target`` label of a probe: its URL without what must not become a label value.

Pure and dependency free so that the probes (which stamp it on every result) and the
metrics (which label series with it) both import it without one importing the other.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# target_of of the URLs seen, as every run labels its result with its target: parsing and
# rebuilding a URL was ~35,000 instructions a run. Bounded: cleared when it grows past any
# config's size.
_KNOWN: dict[str, str] = {}
_KNOWN_MAX = 20_000


def target_of(url: str) -> str:
    """The URL without credentials, query or fragment: the ``target`` label."""
    target = _KNOWN.get(url)
    if target is None:
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        target = _KNOWN[url] = _target_of(url)
    return target


def _target_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


__all__ = ["target_of"]
