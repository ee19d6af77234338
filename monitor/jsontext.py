"""JSON text read exactly as :func:`json.loads` reads it, at less cost for the message a
stream sends event after event.

``json.loads`` passes a text through four Python frames and two regular expressions
(a BOM, whitespace before and after) around the C scanner that does the work. A text that
starts with ``{`` or ``[`` and ends with ``}`` or ``]`` (every object or array sent without
padding: nearly every event of a stream) has neither, so the scanner is asked directly; a
text it reads whole gives the value ``json.loads`` gives. Anything else (a scalar,
whitespace, a BOM, trailing bytes, an error) goes to ``json.loads`` itself, so that every
error is raised as ``json.loads`` raises it. Table-tested against ``json.loads``
(tests/test_jsontext.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# The C scanner of a default decoder: what ``json.loads`` ends up calling (set by
# JSONDecoder.__init__; typeshed does not declare it).
_Scan = Callable[[str, int], tuple[Any, int]]
_SCAN: _Scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_OPEN = "{["  # a character of each (``in`` on one character reads it as one of them)
_CLOSE = "}]"


def loads(text: str) -> Any:
    """``json.loads(text)``; raises ValueError (JSONDecodeError) as it does."""
    if text and text[0] in _OPEN and text[-1] in _CLOSE:
        try:
            value, end = _SCAN(text, 0)
        except (ValueError, StopIteration):
            # The scanner says StopIteration where a nested value is missing; json.loads
            # says why in its own words.
            return json.loads(text)
        if end == len(text):
            return value
    return json.loads(text)


__all__ = ["loads"]
