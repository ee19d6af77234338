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


_KIND = {dict: "a mapping", list: "a list", str: "a string", int: "a number",
         float: "a number", bool: "a boolean", type(None): "empty"}


def _given(value: Any) -> str:
    """What was written, in YAML's words: ``; it is a list``."""
    kind = next((name for tp, name in _KIND.items() if type(value) is tp), None)
    return "" if kind is None else f"; it is {kind}" if kind == "empty" else f", not {kind}"


def _list_of(path: Path_) -> str:
    last = path[-1] if path else ""
    return {"probes": "a list of probes (- name: ...)",
            "steps": "a list of steps (- expect: ... / - send: ... / - expect_events: ...)",
            }.get(str(last), "a list, like [a, b]")


def _mapping_of(path: Path_) -> str:
    if len(path) == 2 and path[0] == "probes":
        return "a probe: a mapping with name and http or websocket"
    if len(path) >= 2 and path[-2] == "steps":
        return "a step: a mapping with one of expect, send, expect_events"
    if path == ("auth",):
        return "a mapping of auth providers by name (NAME: {type: jwt, ...})"
    if (len(path) == 2 and path[0] == "auth") or (len(path) > 2 and path[-1] == "auth"):
        return "an auth provider: a mapping with type: jwt or token_endpoint"
    return "a mapping (key: value)"


# Every pydantic error type a probes.yaml or web config can trigger, in our words. The
# wording of pydantic (``Input should be a valid tuple``) never reaches the user: a type
# missing here gets a plain "is not valid" (tests/config/test_error_wording.py lists them).
_WORDS: dict[str, Callable[[dict[str, Any], Path_], str]] = {
    "missing": lambda e, p: "is required",
    "union_tag_invalid": lambda e, p: "type must be one of: jwt, token_endpoint",
    "union_tag_not_found": lambda e, p: "needs a type (jwt or token_endpoint)",
    "literal_error": lambda e, p: str(e["msg"]).replace("Input should be", "must be"),
    "tuple_type": lambda e, p: f"must be {_list_of(p)}{_given(e['input'])}",
    "list_type": lambda e, p: f"must be {_list_of(p)}{_given(e['input'])}",
    "dict_type": lambda e, p: f"must be {_mapping_of(p)}{_given(e['input'])}",
    "model_type": lambda e, p: f"must be {_mapping_of(p)}{_given(e['input'])}",
    "model_attributes_type": lambda e, p: f"must be {_mapping_of(p)}{_given(e['input'])}",
    "string_type": lambda e, p: f"must be a string{_given(e['input'])}",
    "int_type": lambda e, p: f"must be a whole number{_given(e['input'])}",
    "int_parsing": lambda e, p: f"must be a whole number{_given(e['input'])}",
    "int_from_float": lambda e, p: "must be a whole number",
    "int_parsing_size": lambda e, p: "is too large a number",
    "float_type": lambda e, p: f"must be a number{_given(e['input'])}",
    "float_parsing": lambda e, p: f"must be a number{_given(e['input'])}",
    "bool_type": lambda e, p: "must be true or false",
    "bool_parsing": lambda e, p: "must be true or false",
    "greater_than": lambda e, p: f"must be greater than {e['ctx']['gt']}",
    "greater_than_equal": lambda e, p: f"must be at least {e['ctx']['ge']}",
    "less_than_equal": lambda e, p: f"must be at most {e['ctx']['le']}",
    "too_short": lambda e, p: f"must list at least {e['ctx']['min_length']} item(s)",
    "too_long": lambda e, p: f"must list at most {e['ctx']['max_length']} item(s)",
    "string_pattern_mismatch": lambda e, p: (
        "must be 1 to 100 characters: letters, digits, _ . : -" if p and p[-1] == "name"
        else f"must match the pattern {e['ctx']['pattern']}"),
    "string_too_short": lambda e, p: f"must be at least {e['ctx']['min_length']} "
                                     "character(s)",
    "string_too_long": lambda e, p: f"must be at most {e['ctx']['max_length']} character(s)",
    "value_error": lambda e, p: str(e["msg"]).removeprefix("Value error, "),
    "assertion_error": lambda e, p: str(e["msg"]).removeprefix("Assertion failed, "),
    "recursion_loop": lambda e, p: "refers to itself",
}


def _message(err: Any, model: type[BaseModel], path: Path_) -> str:
    etype = err["type"]
    if etype == "extra_forbidden":
        key = path[-1] if path else ""
        allowed = _fields_at(model, path[:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else (
            f"; expected one of: {', '.join(sorted(set(allowed)))}" if allowed else "")
        return f"unknown key{hint}"
    words = _WORDS.get(etype)
    if words is None:
        return "is not valid"
    try:
        return words(err, path)
    except (KeyError, TypeError):  # a context pydantic did not give: still our words
        return "is not valid"


def _union_branch(loc: tuple[Any, ...]) -> bool:
    """A location inside one member of ``str | AuthSpec``: pydantic names the member."""
    return bool(loc) and isinstance(loc[-1], str) and (
        loc[-1] == "str" or loc[-1].startswith(("tagged-union[", "function-")))


def pydantic_problems(exc: ValidationError, data: Any, model: type[BaseModel],
                      skip: Iterable[Path_] = ()) -> list[Problem]:
    """pydantic's errors as problems at paths of ``data``, in our words. Errors under a path
    in ``skip`` (already reported otherwise, e.g. emptied by an unset ``${VAR}``) are left
    out."""
    skipped = list(skip)
    out: list[Problem] = []
    errors = exc.errors()
    # ``auth: 5`` fails both members of ``str | AuthSpec``: one problem, not one a member.
    branches: dict[Path_, list[Any]] = {}
    for err in errors:
        if _union_branch(tuple(err["loc"])):
            branches.setdefault(tuple(err["loc"][:-1]), []).append(err)
    for err in errors:
        loc = tuple(err["loc"])
        path = _loc_to_path(loc, data, err["type"] == "missing")
        if any(path[:len(s)] == s for s in skipped):
            continue
        members = branches.get(loc[:-1]) if _union_branch(loc) else None
        if members is not None and len(members) > 1:
            given = err["input"]
            if isinstance(given, dict) and loc[-1] == "str":
                continue  # a mapping: the provider's own problems say what is wrong
            if not isinstance(given, dict | str):
                if err is members[0]:
                    out.append((path, "must be the name of an auth provider, or "
                                      f"{_mapping_of(path)}{_given(given)}"))
                continue
        out.append((path, _message(err, model, path)))
    return out


def render(name: str, line_of: Callable[[Path_], int | None], problems: Iterable[Problem],
           redact: Callable[[str], str] = str) -> list[str]:
    """Problems as ``file:line: key: message`` lines, each said once, in file order (by
    line; problems without a line last, in the order given)."""
    lines = [(line_of(path), path, msg) for path, msg in dict.fromkeys(problems)]
    lines.sort(key=lambda x: (x[0] is None, x[0] or 0))
    return [f"{name}:{line if line is not None else '?'}: {display(path)}: {redact(msg)}"
            for line, path, msg in lines]
