"""The PromQL of every panel of a Grafana dashboard, with the dashboard variables resolved,
ready to run against a real Prometheus (the end-to-end test) or to parse with promtool.

Variables are resolved the way the dashboard is used by default ("All" selected):

- constant/custom/textbox variables -> their current (or first) value;
- query variables (``$probe``, ``${environment}``, ``[[location]]``) -> ``.*``; every use
  in the dashboard is a regex matcher (``=~``), which this module checks;
- ``$__rate_interval``, ``$__interval``, ``$__range`` (and ``_s``/``_ms`` forms) -> the
  given durations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# $name, ${name}, ${name:format}, [[name]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)


def panel_targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every target with an expr."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []) or []:
            if target.get("expr"):
                yield panel, target


def _variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        kind, name = var.get("type"), var["name"]
        if kind in {"constant", "custom", "textbox"}:
            current = (var.get("current") or {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else None
            if current in (None, "", "$__all"):
                query = var.get("query", "")
                current = str(query).split(",")[0].strip()
            values[name] = str(current)
        elif kind == "interval":
            values[name] = "__interval__"
        else:
            values[name] = ".*"
    return values


def resolve(expr: str, dashboard: dict[str, Any], *, rate_interval: str = "1m",
            interval: str = "15s", range_: str = "1h") -> str:
    """``expr`` with every Grafana variable replaced (see the module doc)."""
    values = _variable_values(dashboard)
    seconds = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in seconds:
            return seconds[name]
        if name in {"__range_s", "__interval_s", "__range_ms", "__interval_ms"}:
            raise ValueError(f"unsupported variable ${name} in {expr!r}")
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        value = values[name]
        return rate_interval if value == "__interval__" else value

    return _VARIABLE.sub(replace, expr)


def dashboard_queries(path: str | Path, *, rate_interval: str = "1m", interval: str = "15s",
                      range_: str = "1h") -> list[str]:
    """Every panel target expr of the dashboard at ``path``, variables resolved."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        resolve(target["expr"], dashboard, rate_interval=rate_interval, interval=interval,
                range_=range_)
        for _, target in panel_targets(dashboard)
    ]


def variable_queries(path: str | Path) -> list[str]:
    """The PromQL inside the query variables' ``label_values(<selector>, label)``."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query)
        if not m:
            raise ValueError(f"variable {var['name']}: not label_values(...): {query!r}")
        out.append(resolve(m.group(1), dashboard))
    return out
