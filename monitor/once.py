"""``synthmon once``: every probe once, results printed, exit 0 only if all succeeded."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from monitor.auth import TokenSource
from monitor.config import Config, ConfigError, load_file
from monitor.probes.context import ProbeContext, new_session
from monitor.probes.run import run_probe
from monitor.redact import Redactor
from monitor.result import Result


async def run_all(config: Config, names: list[str] | None = None,
                  redactor: Redactor | None = None) -> list[Result]:
    redactor = redactor or Redactor()
    probes = [p for p in config.probes if not names or p.name in names]
    session = new_session()
    ctx = ProbeContext(session=session, tokens=TokenSource(redactor), redactor=redactor)
    try:
        return list(await asyncio.gather(*(run_probe(p, ctx) for p in probes)))
    finally:
        await session.close()


def result_json(r: Result) -> dict[str, Any]:
    data = r.to_dict()
    # The documented top-level keys first; the rest of the record follows.
    head = {k: data.pop(k) for k in ("probe", "type", "outcome", "success", "duration_seconds",
                                     "status_code", "close_code", "evidence")}
    return {**head, **data}


def _seen(r: Result) -> str:
    ev = r.evidence
    parts = [ev.detail] if ev.detail else []
    if ev.diagnosis is not None:
        parts.append(f"diagnosis: {ev.diagnosis.hint}")
    elif ev.body_excerpt and not r.success:
        parts.append(ev.body_excerpt[:120].replace("\n", " "))
    return " | ".join(parts)


def print_table(results: list[Result], console: Console) -> None:
    table = Table(show_lines=False)
    for col in ("probe", "type", "outcome", "status", "close", "latency", "what was seen"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = "green" if r.success else "bold red"
        table.add_row(r.probe, r.type, f"[{style}]{r.outcome.value}[/]",
                      "" if r.status_code is None else str(r.status_code),
                      "" if r.close_code is None else str(r.close_code),
                      f"{r.duration_seconds * 1000:.0f} ms", _seen(r))
    console.print(table)
    failed = sum(not r.success for r in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    console.print(f"[bold {'red' if failed else 'green'}]{summary}[/]")


def run_once(path: str, names: list[str], fmt: str) -> int:
    try:
        config = load_file(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    unknown = [n for n in names if n not in {p.name for p in config.probes}]
    if unknown:
        print(f"unknown probe(s): {', '.join(unknown)}; configured: "
              f"{', '.join(p.name for p in config.probes)}", file=sys.stderr)
        return 1
    results = asyncio.run(run_all(config, names or None))
    if fmt == "json":
        json.dump([result_json(r) for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(results, Console(highlight=False))
    return 0 if all(r.success for r in results) else 1
