"""How a problem in a config file is worded: ``file:line: key: message``.

Used for probes.yaml and for the web config alike. pydantic's error locations are mapped
back to paths in the data (and from there to lines), its wording is replaced by ours, and an
unknown key gets a "did you mean".
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

Path_ = tuple[str | int, ...]
Problem = tuple[Path_, str]


class ConfigError(Exception):
    """Every problem found in a config file, each line ``file:line: key: message``."""

    def __init__(self, problems: list[str]):
        # One problem, one line: keys and values quoted from the file may hold line breaks
        # or other invisible characters; show those escaped.
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


def cut(text: str, limit: int = 300) -> str:
    """Parser messages may quote what they stumbled on; keep them short and on one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _loc_to_path(loc: tuple[Any, ...], data: Any, missing: bool) -> Path_:
    """Map a pydantic error location to a path in the data.

    Tagged unions insert the tag (``jwt``) and function validators insert names that are
    not keys of the data; walk the data and keep only the elements that exist in it.
    """
    path: list[str | int] = []
    node = data
    for elem in loc:
        key = elem
        if isinstance(elem, str) and elem.endswith("_"):  # field `json_` is key `json`
            key = elem[:-1]
        in_map = isinstance(node, dict) and isinstance(key, str) and key in node
        in_seq = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_map or in_seq:
            path.append(key)
            node = node[key]
        elif missing and isinstance(node, dict) and isinstance(elem, str) and elem == loc[-1]:
            path.append(elem)  # a missing required key: name it
    return tuple(path)


def display(path: Path_) -> str:
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif not elem or not elem.isprintable() or any(c in elem for c in " .[]'\""):
            out += f"[{elem!r}]"  # a key that would not read as one: '', 'a b', 'a.b'
        else:
            out += f".{elem}" if out else elem
    return out or "(top level)"


def _fields_at(model: type[BaseModel], path: Path_) -> list[str]:
    """The field names accepted at ``path`` (a mapping inside ``model``), for 'did you mean'."""
    candidates: list[Any] = [model]
    for elem in path:
        nxt: list[Any] = []
        for cand in candidates:
            for tp in _expand(cand):
                if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(elem, str):
                    for fname, f in tp.model_fields.items():
                        if elem in (fname, f.alias):
                            nxt.append(f.annotation)
                elif isinstance(elem, int) and typing.get_origin(tp) in (list, tuple):
                    nxt.extend(a for a in typing.get_args(tp) if a is not Ellipsis)
                elif isinstance(elem, str) and typing.get_origin(tp) is dict:
                    nxt.append(typing.get_args(tp)[1])
        candidates = nxt
    names: list[str] = []
    for cand in candidates:
        for tp in _expand(cand):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                names.extend(f.alias or n for n, f in tp.model_fields.items())
    return names


def _expand(tp: Any) -> list[Any]:
    """Unwrap Annotated / Optional / Union into their member types."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _expand(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [x for a in typing.get_args(tp) for x in _expand(a)]
    return [tp]


def _message(err: Any, model: type[BaseModel], path: Path_) -> str:
    etype = err["type"]
    msg = str(err["msg"])
    if etype == "extra_forbidden":
        key = path[-1] if path else ""
        allowed = _fields_at(model, path[:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else (
            f"; expected one of: {', '.join(sorted(set(allowed)))}" if allowed else "")
        return f"unknown key{hint}"
    if etype == "missing":
        return "is required"
    if etype == "union_tag_invalid":
        return "type must be one of: jwt, token_endpoint"
    if etype == "union_tag_not_found":
        return "needs a type (jwt or token_endpoint)"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if etype == "literal_error":
        return msg.replace("Input should be", "must be")
    if etype in ("string_type", "int_type", "bool_type", "dict_type", "list_type",
                 "tuple_type", "float_type", "model_type", "int_parsing", "bool_parsing",
                 "float_parsing"):
        return msg.replace("Input should be", "must be")
    return msg



def pydantic_problems(exc: ValidationError, data: Any, model: type[BaseModel],
                      skip: Iterable[Path_] = ()) -> list[Problem]:
    """pydantic's errors as problems at paths of ``data``, in our words. Errors under a path
    in ``skip`` (already reported otherwise, e.g. emptied by an unset ``${VAR}``) are left
    out."""
    skipped = list(skip)
    out: list[Problem] = []
    for err in exc.errors():
        path = _loc_to_path(tuple(err["loc"]), data, err["type"] == "missing")
        if any(path[:len(s)] == s for s in skipped):
            continue
        out.append((path, _message(err, model, path)))
    return out


def render(name: str, line_of: Callable[[Path_], int | None], problems: Iterable[Problem],
           redact: Callable[[str], str] = str) -> list[str]:
    """Problems as ``file:line: key: message`` lines, each said once, in the order given."""
    out: list[str] = []
    for path, msg in dict.fromkeys(problems):
        line = line_of(path)
        out.append(f"{name}:{line if line is not None else '?'}: {display(path)}: "
                   f"{redact(msg)}")
    return out
