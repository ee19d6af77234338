"""Durations, read and written: one module for the four ways synthmon shows them.

- :func:`parse_duration` / :func:`format_duration`: as probes.yaml spells them (``1m30s``,
  ``500ms``), for the config and its error messages;
- :func:`ms`: in evidence and details (``42ms``, ``12.5s``), short enough for a log line;
- :func:`latency`: a measured latency for a reader (``42 ms``, ``1.23 s``): the status page
  and the ``once`` table;
- :func:`span`: how long ago, or how long a streak has lasted (``45s``, ``12m``, ``3.5h``).
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any sensible interval, timeout or token lifetime, and far from the limits of
# the scheduler's timedelta arithmetic (a 1e308 s interval would only fail at run time).
MAX_DURATION = 365 * 24 * 3600.0


def parse_duration(value: object) -> float:
    """``"1m30s"`` → 90.0. Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 5s")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise ValueError("must be a duration of at most 8760h (a year)") from None
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError("must be a duration like 5s")
    else:
        raise ValueError("must be a duration like 5s")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("must be a duration greater than 0, like 5s")
    if seconds > MAX_DURATION:
        raise ValueError("must be a duration of at most 8760h (a year)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def ms(seconds: float) -> str:
    """A duration as evidence shows it: ``42ms``, ``12.5s``."""
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


def latency(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s"


def span(seconds: float) -> str:
    delta = max(0.0, seconds)
    if delta < 90:
        return f"{delta:.0f}s"
    if delta < 5400:
        return f"{delta / 60:.0f}m"
    if delta < 129600:
        return f"{delta / 3600:.1f}h"
    return f"{delta / 86400:.1f}d"
