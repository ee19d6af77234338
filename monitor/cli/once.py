"""``synthmon once``: every probe once, results printed, exit 0 only if all succeeded."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor import eventloop
from monitor.cli.check import NO_PROBES
from monitor.cli.junit import cases, junit_report
from monitor.config import Config, ConfigError, ConfigPaths, Probe, config_name, load_files
from monitor.durations import latency
from monitor.links import NO_LINKS, Links
from monitor.outcomes import Outcome
from monitor.preload import preload
from monitor.probes.context import open_context
from monitor.redact import Redactor
from monitor.result import Result
from monitor.runtime import run_with_retries
from monitor.web.summary import redirect_chain, seen

ONCE_SPACING = 0.005  # between the starts of two runs of `once`
ONCE_SPREAD = 2.0  # ... at most, over all of them


async def run_all(config: Config, names: list[str] | None = None,
                  redactor: Redactor | None = None, retries: int | None = None) -> list[Result]:
    """The final attempt of one run of each probe, with the probes' retries (or ``retries``
    for all of them, when given: 0 turns them off)."""
    redactor = redactor or Redactor()
    for secret in config.secrets:
        redactor.add(secret)
    chosen = select(config.probes, names)[0] if names else config.probes
    probes = [p if retries is None else replace(p, timing=replace(p.timing, retries=retries))
              for p in chosen]
    preload(config)
    ctx = open_context(redactor)
    # Started a few milliseconds apart rather than all at once: a run's own CPU (about a
    # millisecond) would otherwise be in the clock of every run started with it, and the
    # last of 50 fast probes reported 50 ms for a target that answers in one.
    spacing = min(ONCE_SPACING, ONCE_SPREAD / max(len(probes), 1))

    async def run(i: int, probe: Probe) -> Result:
        await asyncio.sleep(i * spacing)
        return await run_with_retries(probe, ctx)

    try:
        return list(await asyncio.gather(*(run(i, p) for i, p in enumerate(probes))))
    finally:
        await ctx.close()


def select(probes: Iterable[Probe], wanted: Iterable[str]) -> tuple[list[Probe], list[str]]:
    """The runs ``--probe`` asks for, in config order, and the names it gave that match
    none. ``NAME@VARIANT`` (monitor.runname) is one run; a plain ``NAME`` is the probe's
    every run: all its variants when it has them."""
    asked = list(dict.fromkeys(wanted))
    chosen = [p for p in probes if p.key in asked or p.name in asked]
    unknown = [n for n in asked if not any(n in (p.key, p.name) for p in chosen)]
    return chosen, unknown


def result_json(r: Result, links: Links = NO_LINKS) -> dict[str, Any]:
    data = r.to_dict()
    # The documented top-level keys first; the rest of the record follows.
    head = {k: data.pop(k) for k in ("probe", "type", "outcome", "success", "duration_seconds",
                                     "status_code", "close_code", "trace_id", "evidence")}
    head["trace_url"] = links.trace(r.trace_id)
    return {**head, **data}


COLOR_CHOICES = ("auto", "always", "never")
PIPED_WIDTH = 160  # rich assumes 80 columns when not on a terminal; logs have room
SEEN_BODY_CHARS = 120
SEEN_REDIRECTS = 4  # hops of a failing run's redirect chain in the table


def make_console(color: str = "auto", file: TextIO | None = None) -> Console:
    """A console for the table: colour on a terminal, plain text when piped.

    ``color`` is auto (rich decides: a terminal, FORCE_COLOR and NO_COLOR are honoured),
    always or never.
    """
    if color not in COLOR_CHOICES:
        raise ValueError(f"color must be one of {', '.join(COLOR_CHOICES)}; got {color!r}")
    force = {"always": True, "never": False}.get(color)
    console = Console(file=file, highlight=False, force_terminal=force,
                      no_color=True if color == "never" else None)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = max(console.width, PIPED_WIDTH)
    return console


def answer(r: Result) -> str:
    """The status code and, for a WebSocket, the close code: ``403``, ``101 close 1008``."""
    parts = ["" if r.status_code is None else str(r.status_code)]
    if r.close_code is not None:
        parts.append(f"close {r.close_code}")
    return " ".join(p for p in parts if p) or "-"


def _seen(r: Result, links: Links = NO_LINKS) -> Text:
    """What the server answered; the diagnosis of a refused upgrade on a line of its own."""
    text = Text(seen(r))
    if r.attempt > 1:  # the retries of `once` (--retries), as the daemon makes them
        text.append("\n")
        text.append(f"failed on all {r.attempt} attempts" if not r.success else
                     f"passed on attempt {r.attempt}", style="dim")
    ev = r.evidence
    chain = redirect_chain(r, SEEN_REDIRECTS)
    if chain is not None and not r.success:
        text.append("\n")
        text.append(f"redirects ({len(ev.redirects)}): {chain}", style="dim")
    if ev.hint:
        text.append("\n")
        text.append(f"hint: {ev.hint}", style="yellow")
    if ev.diagnosis is not None and ev.diagnosis.hint:
        text.append("\n")
        text.append(f"diagnosis: {ev.diagnosis.hint}", style="yellow")
    elif not r.success:
        body = ev.last_message or ev.body_excerpt
        if body:
            flat = " ".join(body.split())
            cut = flat[:SEEN_BODY_CHARS] + ("…" if len(flat) > SEEN_BODY_CHARS else "")
            text.append("\n")
            text.append(f"{'message' if ev.last_message else 'body'}: {cut}", style="dim")
    if not r.success and r.trace_id:
        # What to search the backend's logs for.
        text.append("\n")
        text.append(f"trace id: {r.trace_id}", style="dim")
        url = links.trace(r.trace_id)
        if url is not None:
            text.append("\n")
            text.append(f"trace: {url}", style=f"dim link {url}")
    return text


def _outcome_style(r: Result) -> str:
    if r.success:
        return "green"
    return "bold yellow" if r.outcome is Outcome.SLOW else "bold red"


def print_table(results: list[Result], console: Console, links: Links = NO_LINKS) -> None:
    """probe, outcome, status/close code, latency, what was seen; a summary line below."""
    table = Table(box=box.HEAVY_HEAD if console.is_terminal else box.ASCII2,
                  show_lines=console.is_terminal and any(not r.success for r in results))
    table.add_column("probe", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("status/close", no_wrap=True)
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("what was seen", overflow="fold", ratio=1)
    for r in results:
        style = _outcome_style(r)
        table.add_row(Text(r.key, style="bold" if not r.success else ""),
                      Text(r.outcome.value, style=style), answer(r),
                      latency(r.duration_seconds), _seen(r, links))
    console.print(table)
    failed = sum(not r.success for r in results)
    summary = f"{len(results) - failed} passed, {failed} failed"
    console.print(Text(summary, style=f"bold {'red' if failed else 'green'}"))


FORMATS = ("table", "json", "junit")


def run_once(paths: ConfigPaths, names: list[str], fmt: str, color: str = "auto",
             retries: int | None = None, links: Links = NO_LINKS) -> int:
    path = config_name(paths)
    try:
        config = load_files(paths)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if not config.probes:
        # An empty table and exit 0 would let a deploy gate pass on a truncated file.
        print(f"{path}: error: {NO_PROBES}", file=sys.stderr)
        return 1
    for missing in config.missing_secrets:
        # Those probes report config_error below; say why once, where it is configured.
        print(f"warning: {missing.text}", file=sys.stderr)
    unknown = select(config.probes, names)[1]
    if unknown:
        print(f"unknown probe(s): {', '.join(unknown)}; configured: "
              f"{', '.join(p.key for p in config.probes)}"
              + (" (NAME alone runs all of a probe's variants)"
                 if any(p.variant for p in config.probes) else ""), file=sys.stderr)
        return 1
    redactor = Redactor()
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        results = eventloop.run(eventloop.interruptible(
            run_all(config, names or None, redactor, retries=retries)))
    except eventloop.Interrupted:
        return 130
    if fmt == "json":
        json.dump([result_json(r, links) for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif fmt == "junit":
        sys.stdout.flush()
        sys.stdout.buffer.write(junit_report(cases(results), lambda r: result_json(r, links),
                                             lambda text: redactor.redact(text) or "",
                                             wall_seconds=time.monotonic() - clock,
                                             started=started))
        sys.stdout.buffer.flush()
    else:
        print_table(results, make_console(color), links)
    return 0 if all(r.success for r in results) else 1
