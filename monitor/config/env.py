"""``${VAR}`` and ``${VAR:-default}`` substituted into every string value, as its own pass
over the plain data. Each substitution is recorded with where it landed, for the secret
policy (:mod:`monitor.config.secrets`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.config.errors import Path_, Problem
from monitor.trace import RUN_VARIABLES as _RUN_VARIABLE_NAMES

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")
# Filled in per run, not from the environment: a ``send`` step's ``${trace_id}``,
# ``${span_id}``, ``${traceparent}`` (their one list is monitor.trace's) stay as written here.
RUN_VARIABLES = frozenset(_RUN_VARIABLE_NAMES)


@dataclass(frozen=True, slots=True)
class Sub:
    """One ``${VAR}`` replaced by a value from the environment, where it landed."""

    path: Path_
    var: str
    value: str
    start: int  # the span of the value in the substituted string
    end: int


def substitute(text: str, path: Path_, env: Mapping[str, str],
               problems: list[Problem], subs: list[Sub] | None = None,
               unset: list[tuple[Path_, str, str]] | None = None) -> str:
    """``text`` with its ``${VAR}``s replaced (``$$`` is a literal ``$``). An unset variable
    without a default is a problem at ``path``; one with a default is noted in ``unset``
    as (path, name, default)."""
    out: list[str] = []
    size = pos = 0
    for m in _VAR.finditer(text):
        out.append(text[pos:m.start()])
        size += m.start() - pos
        pos = m.end()
        if m.group(0) == "$$":
            piece = "$"
        elif m.group(1) in RUN_VARIABLES and m.group(2) is None:
            piece = m.group(0)
        else:
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    problems.append(
                        (path, f"environment variable {name} is not set "
                               f"(set it, or give a default: ${{{name}:-value}})"))
                elif unset is not None:
                    unset.append((path, name, default))
                piece = default or ""
            else:
                piece = value
                if subs is not None:
                    subs.append(Sub(path, name, value, size, size + len(value)))
        out.append(piece)
        size += len(piece)
    out.append(text[pos:])
    return "".join(out)


def substitute_all(data: Any, env: Mapping[str, str], problems: list[Problem],
                   subs: list[Sub], path: Path_ = (),
                   unset: list[tuple[Path_, str, str]] | None = None) -> Any:
    """``data`` with :func:`substitute` applied to every string value (not to keys), in
    document order. Values YAML built otherwise (timestamps, sets, pairs) stay as they are."""
    if isinstance(data, str):
        return substitute(data, path, env, problems, subs, unset)
    if isinstance(data, dict):
        return {key: substitute_all(value, env, problems, subs, (*path, key), unset)
                for key, value in data.items()}
    if isinstance(data, list):
        return [substitute_all(item, env, problems, subs, (*path, i), unset)
                for i, item in enumerate(data)]
    return data
