"""Values filled into a step's section at run time: every ``${steps.STEP.NAME}`` in the
places its kind declares (url, headers, JSON and text bodies, send payloads, JSON
expectations) replaced, the section rebuilt with ``model_copy`` (its other parts stay the
same objects).

How a value goes in depends on where:

- in a URL it is percent-encoded (``/``, ``?``, ``&`` and spaces too), so that a value is
  one path segment or one query value and never changes where the request goes;
- in a header, a value with a line break is refused (it would smuggle a second header);
- in JSON, a string that is nothing but one reference takes the value's own JSON type
  (a numeric id stays a number); anywhere else the value is text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from monitor.config.errors import Path_
from monitor.config.references import Places, has_refs, matches, substitute, whole_ref
from monitor.probes.flow.extract import Value

_JSON_KEYS = frozenset({"json", "json_body"})


class FillError(Exception):
    """A value that cannot go where it is used (the message never holds the value)."""


Values = Mapping[tuple[str, str], Value]
M = TypeVar("M", bound=BaseModel)


def needs_fill(section: BaseModel, places: Places) -> bool:
    """Whether any string of ``section`` in ``places`` holds a reference (decided once a
    config, so that a step without any is sent as it is)."""
    return any(True for _ in _refs_in(section, (), places))


def _refs_in(obj: Any, path: Path_, places: Places) -> Any:
    if isinstance(obj, str):
        if has_refs(obj) and any(matches(path, p) for p in places):
            yield path
    elif isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            yield from _refs_in(getattr(obj, name), (*path, info.alias or name), places)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _refs_in(value, (*path, key), places)
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _refs_in(item, (*path, i), places)


def fill(section: M, places: Places, values: Values) -> M:
    """``section`` with the values filled in. Raises :class:`FillError`."""
    out = _walk(section, (), places, values)
    assert isinstance(out, type(section))
    return out


def _walk(obj: Any, path: Path_, places: Places, values: Values) -> Any:
    if isinstance(obj, str):
        if has_refs(obj) and any(matches(path, p) for p in places):
            return _fill_text(obj, path, values)
        return obj
    if isinstance(obj, BaseModel):
        updates: dict[str, Any] = {}
        for name, info in type(obj).model_fields.items():
            current = getattr(obj, name)
            new = _walk(current, (*path, info.alias or name), places, values)
            if new is not current:
                updates[name] = new
        return obj.model_copy(update=updates) if updates else obj
    if isinstance(obj, dict):
        items = {k: _walk(v, (*path, k), places, values) for k, v in obj.items()}
        return items if any(items[k] is not v for k, v in obj.items()) else obj
    if isinstance(obj, list | tuple):
        new_items = [_walk(v, (*path, i), places, values) for i, v in enumerate(obj)]
        if all(n is o for n, o in zip(new_items, obj, strict=True)):
            return obj
        return type(obj)(new_items)
    return obj


def _value(values: Values, step: str, name: str) -> Value:
    found = values.get((step, name))
    if found is None:  # check refuses such a reference; a step skipped never gets here
        raise FillError(f"${{steps.{step}.{name}}} has no value")
    return found


def _fill_text(text: str, path: Path_, values: Values) -> Any:
    if _JSON_KEYS.intersection(str(p) for p in path):
        ref = whole_ref(text)
        if ref is not None and ref.step is not None and ref.name is not None:
            return _value(values, ref.step, ref.name).raw
    if path and path[-1] == "url":
        return substitute(text, lambda s, n: quote(_value(values, s, n).text, safe="-._~"))
    filled = substitute(text, lambda s, n: _value(values, s, n).text)
    if len(path) >= 2 and path[-2] == "headers" and any(c in filled for c in "\r\n\0"):
        raise FillError(f"a value cannot go into the {path[-1]} header: it has a line break")
    return filled


__all__ = ["FillError", "Values", "fill", "needs_fill"]
