"""The ``target`` label of a probe: its URL without what must not become a label value.

Pure and dependency free so that the probes (which stamp it on every result) and the
metrics (which label series with it) both import it without one importing the other.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def target_of(url: str) -> str:
    """The URL without credentials, query or fragment: the ``target`` label."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


__all__ = ["target_of"]
