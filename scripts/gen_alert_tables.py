#!/usr/bin/env python3
"""Write the alert tables of README.md and deploy/README.md, generated from alerts.yml.

    .venv/bin/python scripts/gen_alert_tables.py           # rewrite the tables
    .venv/bin/python scripts/gen_alert_tables.py --check   # exit 1 if one is out of date

Each table is everything between ``<!-- alerts:start -->`` and ``<!-- alerts:end -->``:
one row per alert of deploy/prometheus/alerts.yml, pages first, each in file order, with
its severity (and category), its ``for:`` and what it means: the ``# means:`` comment
under the alert's name in alerts.yml (continued on ``#   `` lines). An alert without one
is an error, so a new alert cannot be left out of the tables
(tests/alerting/test_alert_tables.py runs the check).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# Each README and how it links a runbook.
READMES = {ROOT / "README.md": "docs/runbooks/{}.md",
           ROOT / "deploy" / "README.md": "../docs/runbooks/{}.md"}
START = "<!-- alerts:start -->"
END = "<!-- alerts:end -->"

_ALERT_LINE = re.compile(r"^\s*- alert: (\w+)\s*$")
_MEANS = re.compile(r"^\s*# means: (.*)$")
_MORE = re.compile(r"^\s*#   (.*)$")


@dataclass(frozen=True)
class Row:
    alert: str
    severity: str
    category: str | None
    wait: str
    means: str


def meanings(text: str) -> dict[str, str]:
    """The ``# means:`` comment of every alert, joined into one line."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        alert = _ALERT_LINE.match(line)
        if not alert:
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith("#") and not _MEANS.match(lines[j]):
            j += 1
        first = _MEANS.match(lines[j]) if j < len(lines) else None
        if first is None:
            continue
        parts = [first.group(1)]
        j += 1
        while j < len(lines) and (more := _MORE.match(lines[j])):
            parts.append(more.group(1))
            j += 1
        found[alert.group(1)] = " ".join(p.strip() for p in parts)
    return found


def rows(path: Path = ALERTS) -> list[Row]:
    text = path.read_text(encoding="utf-8")
    means = meanings(text)
    doc: dict[str, Any] = yaml.safe_load(text)
    out: list[Row] = []
    missing: list[str] = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            if name not in means:
                missing.append(name)
                continue
            labels = rule.get("labels", {})
            out.append(Row(name, labels["severity"], labels.get("category"),
                           str(rule.get("for", "0s")), means[name]))
    if missing:
        raise SystemExit(f"{path}: no '# means:' comment under {', '.join(missing)}")
    return sorted(out, key=lambda r: r.severity != "page")  # stable: file order within


def table(link: str, path: Path = ALERTS) -> str:
    lines = ["| Alert (runbook) | Severity | `for` | Means |", "|---|---|---|---|"]
    for r in rows(path):
        severity = r.severity + (f" (`category={r.category}`)" if r.category else "")
        lines.append(f"| [`{r.alert}`]({link.format(r.alert)}) | {severity} | {r.wait} | "
                     f"{r.means.replace('|', '&#124;')} |")
    return "\n".join(lines)


def splice(text: str, generated: str, name: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{name} needs the markers {START} and {END}, in that order")
    return text[:start + len(START)] + "\n" + generated + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is out of date")
    args = parser.parse_args(argv)
    stale = []
    for readme, link in READMES.items():
        current = readme.read_text(encoding="utf-8")
        wanted = splice(current, table(link), str(readme))
        if wanted == current:
            continue
        if args.check:
            stale.append(str(readme.relative_to(ROOT)))
        else:
            readme.write_text(wanted, encoding="utf-8")
            print(f"{readme.relative_to(ROOT)}: alert table updated")
    if stale:
        print(f"out of date: {', '.join(stale)}; run scripts/gen_alert_tables.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
