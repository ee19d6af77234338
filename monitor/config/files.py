"""Several probes files read as one, as Gatus reads a config directory: ``-c`` names a file,
a directory (every ``*.yaml`` and ``*.yml`` directly in it, in name order; hidden entries
such as a Kubernetes ConfigMap's ``..data`` are skipped) or several of either.

The files are combined into one document before ``${VAR}`` substitution and validation:
``probes`` lists are concatenated in file order, ``auth`` providers are merged (a name
defined in two files is an error), ``defaults`` are merged key by key (a key set in two
files is an error: defaults apply to every file, so two teams' files cannot both set
one). Every path of the combined document maps back to its file and the path within it
(:class:`Origin`), so that every problem reads ``file:line: key: message`` with the key as
written in that file.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config.errors import ConfigError, Path_, Problem, display
from monitor.config.source import Source, parse

CONFIG_SUFFIXES = (".yaml", ".yml")
PathLike = str | os.PathLike[str]
ConfigPaths = PathLike | Sequence[PathLike]  # what -c names: one path, or several


def paths_of(paths: ConfigPaths) -> list[PathLike]:
    """``paths`` as a list (one path is a list of one)."""
    return [paths] if isinstance(paths, str | os.PathLike) else list(paths)


def config_name(paths: ConfigPaths) -> str:
    """How the config ``-c`` names is called in messages: its path, or its paths."""
    return ", ".join(str(p) for p in paths_of(paths))


def expand(paths: ConfigPaths) -> list[Path]:
    """The files that ``-c`` names, in order: a directory stands for its ``*.yaml`` and
    ``*.yml`` files (not its subdirectories), sorted by name. A file named twice is read
    once. Raises :class:`ConfigError` for a path that is not there and for a directory
    without such files."""
    out: list[Path] = []
    problems: list[str] = []
    for given in paths_of(paths):
        p = Path(given)
        if p.is_dir():
            try:
                found = sorted(e for e in p.iterdir() if not e.name.startswith(".")
                               and e.suffix in CONFIG_SUFFIXES and e.is_file())
            except OSError as exc:
                problems.append(f"{p}: cannot read the directory: {exc.strerror or exc}")
                continue
            if not found:
                problems.append(f"{p}: no *.yaml or *.yml files in this directory")
            out += found
        elif p.exists():
            out.append(p)
        else:
            problems.append(f"{p}: file not found")
    if problems:
        raise ConfigError(problems)
    unique: dict[Path, None] = {}
    for p in out:
        unique.setdefault(p, None)
    return list(unique)


def read(files: Sequence[Path]) -> list[Source]:
    """Each file parsed (see :mod:`~monitor.config.source`); the problems of every file are
    raised together."""
    sources: list[Source] = []
    problems: list[str] = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{p}: file not found")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{p}: cannot read: {exc}")
            continue
        try:
            sources.append(parse(text, str(p)))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return sources


@dataclass
class Origin:
    """Where each path of the combined document was written: a file and the path in it."""

    sources: list[Source]
    probe_starts: list[int] = field(default_factory=list)  # combined index of each file's first
    probe_files: list[int] = field(default_factory=list)   # ... and that file
    keys: dict[Path_, int] = field(default_factory=dict)   # auth, defaults, other keys: file

    def locate(self, path: Path_) -> tuple[int, Path_]:
        """(file index, path in that file)."""
        if len(self.sources) == 1:
            return 0, path
        if len(path) >= 2 and path[0] == "probes" and isinstance(path[1], int):
            at = bisect.bisect_right(self.probe_starts, path[1]) - 1
            if at >= 0:
                return self.probe_files[at], ("probes", path[1] - self.probe_starts[at],
                                              *path[2:])
        for end in range(len(path), 0, -1):
            file = self.keys.get(path[:end])
            if file is not None:
                return file, path
        return 0, path

    def line(self, path: Path_) -> tuple[str, int | None, Path_]:
        """(file name, line, path in that file) of a combined path."""
        file, local = self.locate(path)
        source = self.sources[file]
        return source.name, source.line_of(local), local

    def where(self, path: Path_) -> str:
        """A path named for a message about another place: ``probes[2]`` in one file,
        ``probes[0] in team-b.yaml:4`` across several."""
        if len(self.sources) == 1:
            return display(path)
        name, line, local = self.line(path)
        return f"{display(local)} in {name}:{line if line is not None else '?'}"


_MAPPING = {"auth": "must be a mapping of auth providers by name (NAME: {type: jwt, ...})",
            "defaults": "must be a mapping (key: value)"}


@dataclass(frozen=True, slots=True)
class Located:
    """A problem at a path of one file (a value that did not make it into the combined
    document, so that the combined path would point at another file's)."""

    file: int
    path: Path_
    message: str


def combine(sources: list[Source]) -> tuple[Any, Origin, list[Located]]:
    """One document of several files, where each of its paths came from, and the problems
    of combining them (at paths of the combined document, so that they render in their
    file)."""
    origin = Origin(sources)
    if len(sources) == 1:
        return sources[0].data, origin, []
    data: dict[str, Any] = {}
    problems: list[Located] = []
    probes: list[Any] = []
    for index, source in enumerate(sources):
        doc = source.data if isinstance(source.data, dict) else {}
        for key, value in doc.items():
            if key == "probes" and isinstance(value, list):
                origin.probe_starts.append(len(probes))
                origin.probe_files.append(index)
                probes += value
            elif key == "probes":
                if value is not None:  # the other files' lists cannot take it in
                    problems.append(Located(index, (key,), "must be a list of probes "
                                                           "(- name: ...)"))
                continue
            elif key in ("auth", "defaults"):
                if not isinstance(value, dict):
                    if value is not None:
                        problems.append(Located(index, (key,), _MAPPING[key]))
                    continue
                target = data.setdefault(key, {})
                origin.keys.setdefault((key,), index)
                depth = 1 if key == "auth" else 2  # defaults.labels merge label by label
                _merge_map(target, origin, problems, (key,), value, index, depth)
            else:
                _merge_key(data, origin, problems, (key,), value, index)
    if origin.probe_starts:
        data["probes"] = probes
    return data, origin, problems


def _merge_map(target: dict[str, Any], origin: Origin, problems: list[Located], at: Path_,
               value: dict[str, Any], index: int, depth: int) -> None:
    for key, item in value.items():
        path = (*at, key)
        if depth > 1 and isinstance(item, dict) and isinstance(target.get(key, {}), dict):
            origin.keys.setdefault(path, index)
            _merge_map(target.setdefault(key, {}), origin, problems, path, item, index,
                       depth - 1)
        else:
            _merge_key(target, origin, problems, path, item, index)


def _merge_key(target: dict[str, Any], origin: Origin, problems: list[Located], path: Path_,
               value: Any, index: int) -> None:
    """``value`` at ``path`` unless another file set it already: then a problem, placed in
    the later file (the first file's value is kept)."""
    key = path[-1]
    assert isinstance(key, str)
    if key not in target:
        target[key] = value
        origin.keys[path] = index
        return
    first = origin.sources[origin.keys.get(path, 0)]
    line = first.line_of(path)
    what = {"auth": "auth provider", "defaults": "default"}.get(str(path[0]), "key")
    hint = ("; provider names are shared by every file" if path[0] == "auth" else
            "; defaults apply to every file, so set it in one (or per probe)"
            if path[0] == "defaults" else "; each top-level key may be set in one file")
    name = display(path[1:]) if len(path) > 1 else display(path)
    problems.append(Located(index, path, f"{what} {name} is already set in "
                                         f"{first.name}:{line if line is not None else '?'}"
                                         f"{hint}"))


def render(origin: Origin, problems: Sequence[Problem], located: Sequence[Located] = (),
           redact: Callable[[str], str] = str) -> list[str]:
    """Problems (at paths of the combined document) and located problems as ``file:line:
    key: message`` lines, each said once, in file order, then line order within a file
    (problems without a line last)."""
    rows: dict[tuple[int, Path_, str], None] = {}
    for path, msg in problems:
        file, local = origin.locate(path)
        rows.setdefault((file, local, msg), None)
    for item in located:
        rows.setdefault((item.file, item.path, item.message), None)
    out: list[tuple[int, bool, int, str]] = []
    for file, local, msg in rows:
        source = origin.sources[file]
        line = source.line_of(local)
        out.append((file, line is None, line or 0,
                    f"{source.name}:{line if line is not None else '?'}: {display(local)}: "
                    f"{redact(msg)}"))
    out.sort(key=lambda row: row[:3])
    return [row[3] for row in out]


__all__ = ["CONFIG_SUFFIXES", "ConfigPaths", "Located", "Origin", "PathLike", "combine",
           "config_name", "expand", "paths_of", "read", "render"]
