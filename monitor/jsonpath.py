"""Dotted paths into JSON (``checks.postgres.status``, ``items.0.name``): one reading for
the HTTP and WebSocket expectations and for the token endpoint's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MISSING: Any = object()  # what lookup() returns when the path is not there (None may be a value)


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``items.0.name``), or ``MISSING``."""
    if path in ("", "."):
        return data
    return lookup_parts(data, path.split("."))


def lookup_parts(data: Any, parts: Sequence[str]) -> Any:
    """:func:`lookup` of a path already split at its dots (for a path looked up in every
    message of a stream)."""
    node = data
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                return MISSING
            node = node[part]
        elif isinstance(node, list):
            try:
                index = int(part)
            except ValueError:
                return MISSING
            if not -len(node) <= index < len(node):
                return MISSING
            node = node[index]
        else:
            return MISSING
    return node
