"""probes.yaml as text → plain data, with the line of every key and list item.

PyYAML (libyaml's parser when available) composes the text into nodes, which keep their
lines; scalars resolve by YAML 1.2's core schema (``yes`` and ``on`` are strings, ``017``
is 17, ``1e3`` is a float). Aliases, merge keys and nesting are bounded, so that a hostile
file costs at most a clear error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from monitor.config.errors import ConfigError, Path_, cut


@dataclass
class Source:
    """The plain data of a file and the line of every path in it."""

    name: str
    data: Any
    lines: dict[Path_, int]  # data path → 1-based line

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


# Aliases are expanded into plain data: a few hundred bytes of aliases of aliases can stand
# for billions of values. No real probes.yaml comes near this many.
MAX_VALUES = 100_000
# Nested flow collections ("[[[[...") are refused before parsing: no real file nests
# brackets this deep, and the parser's recursion would only fail much later.
MAX_FLOW_DEPTH = 200
_FLOW = re.compile(r"[\[\]{}\n]")
# libyaml's composer recurses in C, without Python's recursion limit: a deep enough block
# nesting ("- - - - ...") overflows the C stack. A block collection starts further right
# than its parent (or at its column, once, for a list under a key), so the nesting depth is
# bounded by the widest run of indentation and indicators at the start of a line. A file
# with such a run this long is composed by PyYAML's Python composer instead, whose recursion
# ends in RecursionError ("nested too deeply").
_DEEP_BLOCK = re.compile(r"^[ \t?:-]{400}", re.MULTILINE)


def _too_deep_at(text: str) -> int | None:
    """The line where flow brackets nest deeper than MAX_FLOW_DEPTH, or None. Brackets in
    quoted strings count too: only a file with hundreds of unbalanced ones is refused."""
    depth, line = 0, 1
    for m in _FLOW.finditer(text):
        c = m.group()
        if c == "\n":
            line += 1
        elif c in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return line
        else:
            depth = max(0, depth - 1)
    return None


class _TooBig(Exception):
    pass


class _YamlProblem(Exception):
    """A problem of the YAML itself found while walking the nodes (line is 1-based)."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_MERGE, _TIMESTAMP, _BINARY = _T + "merge", _T + "timestamp", _T + "binary"
_SET, _OMAP, _PAIRS = _T + "set", _T + "omap", _T + "pairs"


class _Resolver(BaseResolver):
    """The implicit tags of plain scalars by YAML 1.2's core schema, as ruamel.yaml (which
    loaded these files before) resolves them: ``yes``/``on`` stay strings, ``017`` is
    decimal, ``1e3`` is a float, ``1:30`` a string; ``<<`` is a merge key."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # libyaml's composer asks for every scalar (140,000 of them in 10,000 probes), and
        # most plain ones come back again and again (keys, 200, true): their tag is kept
        # rather than matched against the regular expressions anew each time. A scalar
        # that is not plain is a string (there are no path resolvers). The answers are
        # BaseResolver's.
        if kind is ScalarNode:
            if not implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                if len(_PLAIN_TAGS) < _PLAIN_TAGS_MAX:
                    _PLAIN_TAGS[value] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # only path resolvers need it, and there are none: one call less a node

    def ascend_resolver(self) -> None:
        pass


_PLAIN_TAGS: dict[str, str] = {}  # for one composition: _compose empties it
_PLAIN_TAGS_MAX = 50_000


for _tag, _regexp, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_FLOAT, r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    (_INT, r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    (_MERGE, r"^(?:<<)$", "<"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_TIMESTAMP, r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
]:
    _Resolver.add_implicit_resolver(_tag, re.compile(_regexp, re.X), list(_first))

try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
except ImportError:  # PyYAML without libyaml: its pure-Python parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _DeepLoader(Reader, Scanner, Parser, Composer, _Resolver):
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Resolver.__init__(self)

    _FastLoader: type = _DeepLoader
else:
    class _CLoader(CParser, _Resolver):
        """libyaml parses and composes; nodes are resolved by _Resolver."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

    class _PyComposerLoader(Composer, CParser, _Resolver):
        """libyaml parses; PyYAML's Python composer builds the nodes (bounded recursion)."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _Resolver.__init__(self)

    _FastLoader = _CLoader
    _DeepLoader = _PyComposerLoader  # type: ignore[misc,assignment]


def _compose(text: str) -> Node | None:
    loader = (_DeepLoader if _DEEP_BLOCK.search(text) else _FastLoader)(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()
        # The kept tags hold the node tree's strings: kept past the load, they would pin
        # its pools (see _fresh).
        _PLAIN_TAGS.clear()


_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}


def _int(text: str) -> int:
    """A YAML 1.2 int: 0b, 0o and 0x prefixes; a leading 0 alone is still decimal."""
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


def _float(text: str) -> float:
    digits = text.replace("_", "").lower()
    if digits.lstrip("+-") == ".inf":
        return -math.inf if digits[0] == "-" else math.inf
    if digits == ".nan":
        return math.nan
    return float(digits)


def _fresh(text: str) -> str:
    """``text`` in a new string object (``str()`` and ``[:]`` return the same object).

    The strings that outlive a load (names, URLs, ...) must not be the node tree's: those
    sit among the tree's ~80 small objects per probe, and a few survivors keep every pool
    of them from being freed. At 10,000 probes that pinned ~27 MB after the tree was gone;
    copies made while walking sit among the walk's far fewer objects."""
    return text[:1] + text[1:] if len(text) > 1 else text


class _Walker:
    """Nodes → plain data, recording the line of every path."""

    def __init__(self, lines: dict[Path_, int]):
        self.lines = lines
        self.merging: set[int] = set()  # mappings whose merge keys are being resolved
        self.own = 0
        self._constructor: SafeConstructor | None = None

    def constructed(self, node: Node) -> Any:
        """Any other standard tag (timestamp, binary, set, pairs), as PyYAML's SafeLoader
        builds it."""
        if self._constructor is None:
            self._constructor = SafeConstructor()
        return self._constructor.construct_object(node, deep=True)

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        try:
            if tag == _STR:
                return _fresh(value)
            if tag == _INT:
                return _int(value)
            if tag == _FLOAT:
                return _float(value)
            if tag == _BOOL:
                return _BOOLS[value]
            if tag == _NULL:
                return None
            if tag in (_TIMESTAMP, _BINARY):
                return self.constructed(node)
        except (ValueError, KeyError, YAMLError):
            raise _YamlProblem(node.start_mark.line + 1,
                               f"not a valid {tag.removeprefix(_T)}") from None
        if tag == _MERGE:  # "<<" where a value was expected
            return value
        raise _YamlProblem(node.start_mark.line + 1, f"unknown tag {cut(tag, 100)!r}")

    def key(self, node: Node) -> str:
        if isinstance(node, ScalarNode):
            return str(self.scalar(node))
        if isinstance(node, SequenceNode):
            return str(tuple(self.key(n) for n in node.value))
        assert isinstance(node, MappingNode)
        return "ordereddict(" + repr([(self.key(k), self.key(v)) for k, v in node.value]) + ")"

    def pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The mapping's own pairs, then those merged in with ``<<`` that it does not set
        (from the first of several merged mappings that has the key). Duplicate keys are
        refused. ``self.own`` is left at the number of the mapping's own pairs."""
        own: list[tuple[Node, Node]] = []
        merges: list[Node] = []
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and isinstance(key_node, ScalarNode):
                merges.append(value_node)
                continue
            if isinstance(key_node, ScalarNode):
                key = self.scalar(key_node)
                key = key if _hashable(key) else str(key)
            else:
                key = self.key(key_node)
            if key in seen:
                raise _YamlProblem(key_node.start_mark.line + 1,
                                   f"found duplicate key {cut(str(key), 100)!r}")
            seen.add(key)
            own.append((key_node, value_node))
        self.own = len(own)
        if not merges:
            return own
        if id(node) in self.merging:
            raise _YamlProblem(node.start_mark.line + 1, "a mapping cannot merge itself")
        self.merging.add(id(node))
        try:
            merged: list[tuple[Node, Node]] = []
            for value_node in merges:
                sources = value_node.value if isinstance(value_node, SequenceNode) \
                    else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        expected = "a mapping" if source is not value_node else \
                            "a mapping or list of mappings"
                        raise _YamlProblem(
                            source.start_mark.line + 1,
                            f"expected {expected} for merging, but found "
                            f"{type(source).__name__.removesuffix('Node').lower()}")
                    merged += self.pairs(source)
        finally:
            self.merging.discard(id(node))
        count = len(own)
        keys = {self.key(k) for k, _ in own}
        for key_node, value_node in merged:
            key = self.key(key_node)
            if key not in keys:
                keys.add(key)
                own.append((key_node, value_node))
        self.own = count
        return own

    def walk(self, node: Node, path: Path_) -> Any:
        lines = self.lines
        if len(lines) > MAX_VALUES:
            raise _TooBig
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            if node.tag == _OMAP:
                pairs = self.omap_pairs(node)
                return self.mapping(node, pairs, path, len(pairs))
            if node.tag == _PAIRS:
                return self.constructed(node)
            items = []
            for i, item in enumerate(node.value):
                child = (*path, i)
                lines[child] = item.start_mark.line + 1
                items.append(self.walk(item, child))
            return items
        assert isinstance(node, MappingNode)
        if node.tag == _SET:
            return self.constructed(node)
        pairs = self.pairs(node)
        return self.mapping(node, pairs, path, self.own)

    def mapping(self, node: Node, pairs: list[tuple[Node, Node]], path: Path_,
                own: int) -> Any:
        """Keys merged in with ``<<`` (the pairs after the first ``own``) are on the line
        of the mapping that merges them, as ruamel.yaml placed them."""
        out: dict[str, Any] = {}
        lines = self.lines
        for i, (key_node, value_node) in enumerate(pairs):
            key = self.key(key_node)
            child = (*path, key)
            lines[child] = (key_node if i < own else node).start_mark.line + 1
            out[key] = self.walk(value_node, child)
        return out

    def omap_pairs(self, node: SequenceNode) -> list[tuple[Node, Node]]:
        pairs = []
        for item in node.value:
            if not isinstance(item, MappingNode) or len(item.value) != 1:
                raise _YamlProblem(item.start_mark.line + 1,
                                   "an !!omap item must be a mapping of one key")
            pairs.append(item.value[0])
        return pairs


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def parse(text: str, name: str, top_keys: str = "defaults, auth and probes") -> Source:
    """Compose ``text`` and walk it into plain data. Raises :class:`ConfigError` (with the
    line where known) for anything that is not a YAML mapping we can read; never another
    exception, whatever the text."""
    deep = _too_deep_at(text)
    if deep is not None:
        raise ConfigError([f"{name}:{deep}: the document is nested too deeply "
                           f"(more than {MAX_FLOW_DEPTH} levels of brackets)"])
    try:
        root = _compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # libyaml may place an error at the end of the stream one line past the last one
        # (no newline at the end): the user's editor has no such line.
        last = text.count("\n") + 1
        line = f"{min(mark.line + 1, last)}" if mark is not None else "?"
        problem = exc.problem or exc.context or "invalid YAML"
        if problem == "second occurrence" and exc.context_mark is not None:
            # libyaml refuses an anchor defined again: "found duplicate anchor; first
            # occurrence" (context) ... "second occurrence" (problem).
            problem = f"an anchor is defined twice (first on line {exc.context_mark.line + 1})"
        raise ConfigError([f"{name}:{line}: invalid YAML: {cut(problem)}"]) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise ConfigError([f"{name}:?: invalid YAML: {cut(str(exc))}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    except Exception as exc:  # never a traceback for a bad file
        raise ConfigError([f"{name}:?: invalid YAML: the parser failed "
                           f"({type(exc).__name__}: {cut(str(exc))})"]) from None
    if root is not None and (not isinstance(root, MappingNode) or root.tag == _SET):
        raise ConfigError([f"{name}:1: the top level must be a mapping with {top_keys}"])
    lines: dict[Path_, int] = {(): 1}
    try:
        data = {} if root is None else _Walker(lines).walk(root, ())
    except _YamlProblem as exc:
        where = "?" if exc.line is None else exc.line
        raise ConfigError([f"{name}:{where}: invalid YAML: {cut(exc.message)}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    except _TooBig:
        raise ConfigError([f"{name}:?: the document expands to more than {MAX_VALUES} values "
                           "(aliases of aliases?)"]) from None
    del root  # the node tree: several times the size of the data, and not needed any more
    return Source(name, data, lines)
