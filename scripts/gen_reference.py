"""Write the probes.yaml reference into README.md, generated from ``synthmon schema``.

    .venv/bin/python scripts/gen_reference.py            # rewrite README.md between the markers
    .venv/bin/python scripts/gen_reference.py --check    # exit 1 if README.md is out of date

The reference is everything between ``<!-- reference:start -->`` and
``<!-- reference:end -->``; the rest of the README is left alone. Every key, type, default
and description comes from the JSON Schema that the config models generate, so a field
added to ``monitor/config/schema/`` shows up here after one run of this script (and
``tests/config/test_schema_docs.py`` fails until it is run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.config import json_schema  # noqa: E402  (after the path fix above)
from monitor.config.schema.base import HTTP_URL, WS_URL  # noqa: E402

README = ROOT / "README.md"
START = "<!-- reference:start -->"
END = "<!-- reference:end -->"
DURATION_DOC = "a duration like 500ms, 5s, 1m30s (a bare number is seconds)"
# The URL fields' patterns, named as the intro explains them rather than shown as regexes.
URL_TYPES = {HTTP_URL["pattern"]: "http(s) URL", WS_URL["pattern"]: "ws(s) URL"}

Schema = dict[str, Any]


class Reference:
    """Walks the schema from the top level and renders one table per object."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.defs: dict[str, Schema] = schema.get("$defs", {})
        self.paths: dict[str, str] = {}  # $def name -> the path it is documented under
        self.order: list[tuple[str, Schema]] = []  # (path, object schema), in reading order

    # ------------------------------------------------------------------ walking

    def walk(self) -> None:
        self._visit("top level", self.schema, None)

    def _visit(self, path: str, node: Schema, def_name: str | None) -> None:
        if def_name is not None:
            if def_name in self.paths:
                return
            self.paths[def_name] = path
        self.order.append((path, node))
        for key, prop in node.get("properties", {}).items():
            child = key if path == "top level" else f"{path}.{key}"
            self._children(child, prop)

    def _children(self, path: str, node: Schema) -> None:
        """Find the objects below a property: refs, list items, map values, unions."""
        if "$ref" in node:
            name = self._ref_name(node["$ref"])
            if self.defs[name].get("type") == "array":  # a section written as a list (flow)
                self._children(path, self.defs[name])
                return
            self._visit(path, self.defs[name], name)
            return
        options = node.get("anyOf") or node.get("oneOf") or []
        tagged = "discriminator" in node
        for option in options:
            if tagged and "$ref" in option:
                name = self._ref_name(option["$ref"])
                tag = self.defs[name]["properties"]["type"].get("const", name)
                self._children(f"{path} (type: {tag})", option)
            else:
                self._children(path, option)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            self._children(f"{path}[]", node["items"])
        extra = node.get("additionalProperties")
        if node.get("type") == "object" and isinstance(extra, dict):
            self._children(f"{path}.NAME", extra)

    @staticmethod
    def _ref_name(ref: str) -> str:
        return ref.rsplit("/", 1)[-1]

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def anchor(path: str) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in path.lower())
        return "ref-" + "-".join(part for part in slug.split("-") if part)

    def link(self, def_name: str) -> str:
        path = self.paths.get(def_name, def_name)
        return f"[`{path}`](#{self.anchor(path)})"

    def type_of(self, node: Schema) -> str:
        if _is_duration(node):
            return "duration"
        options = node.get("anyOf", [])
        counts = [o for o in options if o.get("type") == "integer"]
        if len(options) == 2 and counts and "maximum" in counts[0] and any(
                "\\$\\{" in str(o.get("pattern", "")) for o in options):  # a count or ${VAR}
            return f"integer {counts[0].get('minimum', 0)} to {counts[0]['maximum']}"
        if "$ref" in node:
            return self.link(self._ref_name(node["$ref"]))
        if "const" in node:
            return f"`{json.dumps(node['const'])}`"
        if "enum" in node:
            return " \\| ".join(f"`{v}`" for v in node["enum"])
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            if str(node.get("description", "")).startswith("status codes"):
                return "status codes"
            kept = [o for o in options if o.get("type") != "null"]
            return " or ".join(dict.fromkeys(self.type_of(o) for o in kept))
        kind = node.get("type")
        if kind == "array":
            items = node.get("items")
            return f"list of {self.type_of(items)}" if isinstance(items, dict) else "list"
        if kind == "object":
            extra = node.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                return f"map of {self.type_of(extra)}"
            return "mapping"
        if kind == "integer" and "minimum" in node and "maximum" in node:
            return f"integer {node['minimum']} to {node['maximum']}"
        if kind == "integer" and "exclusiveMinimum" in node:
            return f"integer > {node['exclusiveMinimum']}"
        if kind == "string" and node.get("pattern") in URL_TYPES:
            return URL_TYPES[node["pattern"]]
        if kind == "string" and "pattern" in node:
            # A | would end the table cell; GitHub renders \| in code in a table as |.
            return f"string matching `{node['pattern'].replace('|', chr(92) + '|')}`"
        if kind is None:
            return "any"
        return str(kind)

    @staticmethod
    def description(node: Schema) -> str:
        text = str(node.get("description", ""))
        if not text:
            for option in node.get("anyOf", []):
                inner = str(option.get("description", ""))
                if inner and inner != DURATION_DOC:
                    text = inner
        return text if text != DURATION_DOC else ""

    @staticmethod
    def default(node: Schema, required: bool) -> str:
        if required:
            return "**required**"
        if "default" not in node:
            return ""
        value = node["default"]
        if value is None:
            return ""
        if _is_duration(node) and isinstance(value, int | float):
            return f"`{_duration(float(value))}`"
        if (isinstance(value, list) and value and all(isinstance(v, list) and len(v) == 2
                                                       for v in value)):
            # status ranges are stored as [low, high] pairs
            return ", ".join(f"`{lo}-{hi}`" if lo != hi else f"`{lo}`" for lo, hi in value)
        if isinstance(value, str) and value:
            return f"`{value}`"
        return f"`{json.dumps(value)}`"

    def render(self) -> str:
        self.walk()
        out = [
            "_Generated from `synthmon schema` by `scripts/gen_reference.py`; do not edit by "
            "hand. Types: a **duration** is "
            "`500ms`, `5s`, `1m30s` or a bare number of seconds; **status codes** are `200`, "
            "`\"200-299\"`, `\"2xx\"` or a list of these; an **http(s) URL** is `http://` or "
            "`https://` and a host, a **ws(s) URL** `ws://` or `wss://` and a host, the scheme "
            "in any case (`HTTP://`, as RFC 3986 allows). Every string may use `${VAR}` or "
            "`${VAR:-default}`._",
            "",
        ]
        for path, node in self.order:
            heading = "probes.yaml (top level)" if path == "top level" else f"`{path}`"
            out.append(f'<a id="{self.anchor(path)}"></a>')
            out.append(f"### {heading}")
            out.append("")
            doc = str(node.get("description", "")).strip()
            if doc and path != "top level":
                out.append(_cell(doc))
                out.append("")
            required = set(node.get("required", []))
            out.append("| key | type | default | description |")
            out.append("|---|---|---|---|")
            for key, prop in node.get("properties", {}).items():
                cells = [f"`{key}`", self.type_of(prop), self.default(prop, key in required),
                         _cell(self.description(prop))]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        return "\n".join(out)


def _is_duration(node: Schema) -> bool:
    options = node.get("anyOf", [])
    if any(o.get("description") == DURATION_DOC for o in options):
        return True
    return any(o.get("type") == "string" and "(ms|s|m|h)" in str(o.get("pattern", ""))
               for o in options)


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _cell(text: str) -> str:
    """Schema text for a Markdown table cell: ``<token>`` would be taken for an HTML tag."""
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def generate(schema: Schema | None = None) -> str:
    """The text that belongs between the markers (without them)."""
    return Reference(schema if schema is not None else json_schema()).render()


def splice(readme: str, generated: str) -> str:
    """``readme`` with the text between the markers replaced by ``generated``."""
    start = readme.find(START)
    end = readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the markers {START} and {END}, in that order")
    return readme[:start + len(START)] + "\n" + generated.rstrip("\n") + "\n" + readme[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="only check that README.md is current; exit 1 if not")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    wanted = splice(current, generate())
    if args.check:
        if wanted != current:
            print(f"{args.readme}: the probes.yaml reference is out of date; run "
                  "scripts/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.readme.write_text(wanted, encoding="utf-8")
        print(f"{args.readme}: probes.yaml reference updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
