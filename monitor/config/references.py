"""``${steps.STEP.NAME}``: a value one step of a flow extracted, used by a later one.

One grammar for the two readers: ``check`` (:func:`reference_problems`, every reference of a
flow checked against the steps before it, with the path of each problem) and the flow's
runner (:func:`substitute`, which fills the values in at run time). A kind says where in
its section references may stand (:data:`Places`, patterns of paths: ``url``, ``headers.*``,
``json_body.**``); a reference anywhere else would be sent as written, so it is refused.

The environment's ``${VAR}`` is substituted at load and leaves these alone (a dot is not
part of a variable's name).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from monitor.config.errors import Path_, Problem

STEP_NAME: Final = r"^[A-Za-z0-9_-]{1,64}$"
_STEP_NAME = re.compile(STEP_NAME)
# Everything from ${steps. to the next }: what it holds is checked, so that a typo such as
# ${steps.login} or ${steps.login.token.x} is an error, not a string sent as written.
_REF = re.compile(r"\$\{steps\.([^}]*)\}")
_PARTS = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([A-Za-z_][A-Za-z0-9_]{0,63})$")
FORM: Final = "${steps.STEP.NAME}"

# Where references may stand in a kind's section, as patterns of its path: a key matches
# itself, ``*`` any one key or index, ``**`` anything below.
Places = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    """One ``${steps.STEP.NAME}`` in a string; ``step`` and ``name`` are None when the text
    between the braces is not ``STEP.NAME``."""

    text: str  # as written
    step: str | None
    name: str | None
    start: int
    end: int


def refs(text: str) -> list[Ref]:
    """Every reference in ``text``, in order."""
    out: list[Ref] = []
    for m in _REF.finditer(text):
        parts = _PARTS.match(m.group(1))
        out.append(Ref(m.group(0), parts.group(1) if parts else None,
                       parts.group(2) if parts else None, m.start(), m.end()))
    return out


def has_refs(text: str) -> bool:
    return "${steps." in text


def substitute(text: str, value: Callable[[str, str], str]) -> str:
    """``text`` with every well-formed reference replaced by ``value(step, name)`` (which
    may raise to refuse it); a malformed one stays as written (``check`` refused it)."""
    out: list[str] = []
    pos = 0
    for ref in refs(text):
        if ref.step is None or ref.name is None:
            continue
        out.append(text[pos:ref.start])
        out.append(value(ref.step, ref.name))
        pos = ref.end
    out.append(text[pos:])
    return "".join(out)


def whole_ref(text: str) -> Ref | None:
    """The reference when ``text`` is nothing but one (a JSON value that takes the
    extracted value's own type: ``thread_id: "${steps.thread.id}"`` sends a number when the
    id was one)."""
    found = refs(text)
    if len(found) == 1 and found[0].start == 0 and found[0].end == len(text) \
            and found[0].step is not None:
        return found[0]
    return None


def matches(path: Path_, pattern: str) -> bool:
    """Whether ``path`` (relative to a kind's section) is matched by ``pattern``."""
    parts = pattern.split(".")
    for i, part in enumerate(parts):
        if part == "**":
            return True
        if i >= len(path) or (part != "*" and str(path[i]) != part):
            return False
    return len(path) == len(parts)


def strings(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every string value in plain data (not keys), with its path, in document order."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from strings(value, (*path, key))
    elif isinstance(data, list | tuple):
        for i, item in enumerate(data):
            yield from strings(item, (*path, i))


@dataclass(frozen=True, slots=True)
class StepRefs:
    """What the reference check reads of one step of a flow (from plain data, so that a
    step whose section does not validate is still checked)."""

    index: int
    name: str | None  # None: missing or not a valid name (reported by the schema)
    values: tuple[str, ...]  # the names it extracts
    strings: tuple[tuple[Path_, str], ...]  # every string of its section, path from the step
    places: Places  # where its kind substitutes references, as paths from the step


def reference_problems(steps: Sequence[StepRefs]) -> list[Problem]:
    """Every problem of a flow's references and step names; paths relative to the flow
    (``(2, "http", "url")``)."""
    out: list[Problem] = []
    first: dict[str, int] = {}
    for step in steps:
        if step.name is None:
            continue
        if step.name in first:
            out.append(((step.index, "name"), f"step name '{step.name}' is used twice (first "
                                               f"by flow[{first[step.name]}])"))
        else:
            first[step.name] = step.index
    by_name = {s.name: s for s in steps if s.name is not None and first.get(s.name) == s.index}
    for step in steps:
        for path, text in step.strings:
            if not has_refs(text):
                continue
            where = (step.index, *path)
            if not any(matches(path, p) for p in step.places):
                out.append((where, f"{FORM} is filled in only in "
                                   f"{_places_words(step.places)}; here it would be sent "
                                   "as written"))
                continue
            for ref in refs(text):
                problem = _ref_problem(ref, step, by_name)
                if problem:
                    out.append((where, problem))
    return out


def _places_words(places: Places) -> str:
    return ", ".join(p.replace(".**", "").replace(".*", "") for p in places)


def _ref_problem(ref: Ref, step: StepRefs, by_name: dict[str, StepRefs]) -> str | None:
    if ref.step is None or ref.name is None:
        return f"{ref.text[:80]} must be {FORM} (a step's name, a dot, a value's name)"
    target = by_name.get(ref.step)
    if target is None:
        known = [n for n in by_name if n is not None]
        guess = difflib.get_close_matches(ref.step, known, n=1)
        return (f"{ref.text} names no step '{ref.step}'"
                + (f"; did you mean '{guess[0]}'?" if guess else
                   f" (steps: {', '.join(known) or 'none'})"))
    if ref.name not in target.values:
        guess = difflib.get_close_matches(ref.name, target.values, n=1)
        return (f"{ref.text}: step '{ref.step}' extracts no '{ref.name}'"
                + (f"; did you mean '{guess[0]}'?" if guess else
                   f" (it extracts: {', '.join(target.values) or 'nothing'})"))
    if target.index >= step.index:
        when = "by the step itself" if target.index == step.index else \
            f"before step '{ref.step}' (flow[{target.index}]) runs"
        return f"{ref.text} is used {when}: a value can be used only by the steps after " \
               "the one that extracts it"
    return None


def step_name_problem(name: str) -> str | None:
    if not _STEP_NAME.match(name):
        return ("must be 1 to 64 characters: letters, digits, _ and - (it is written "
                f"{FORM}, so no dots)")
    return None


__all__ = ["FORM", "STEP_NAME", "Places", "Ref", "StepRefs", "has_refs", "matches",
           "reference_problems", "refs", "step_name_problem", "strings", "substitute",
           "whole_ref"]
