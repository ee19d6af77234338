"""``python -m bench [--quick] [--only NAME]...``: run the benchmarks, print a table, write
``bench/results.json``.

The full run installs Debian's ``prometheus-blackbox-exporter`` and ``nginx`` where missing
(apt-get). ``--quick`` installs nothing and shrinks every size so that the whole run takes
seconds; comparisons whose baseline binary is missing are reported as such.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import servers
from bench.cases import CASES, Ctx
from bench.util import BenchError, Cores, pin_self, temp_dir

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, a few seconds, no apt-get (the smoke test runs this)")
    p.add_argument("--only", action="append", choices=sorted(CASES), default=[],
                   help="run only this benchmark (repeatable)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                   help=f"where to write the JSON results ({DEFAULT_OUTPUT.name})")
    p.add_argument("--no-install", action="store_true", help="never run apt-get")
    p.add_argument("--one-loop", action="store_true",
                   help="measure synthmon on its default loop (uvloop) only, not also asyncio")
    p.add_argument("--pretend-missing", action="append", default=[],
                   choices=(servers.BLACKBOX, servers.NGINX),
                   help="behave as if this binary were not installed (repeatable)")
    p.add_argument("--keep-logs", type=Path, default=None,
                   help="copy the logs of every process started into this directory")
    return p


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if value == int(value) and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render_table(results: dict[str, Any]) -> str:
    header = ("benchmark", "metric", "unit", "synthmon", "baseline", "ratio", "target", "ok",
              "detail")
    lines: list[tuple[str, ...]] = [header]
    for name, res in results.items():
        if res.get("status") != "ok":
            reason = " ".join(str(res.get("reason", "")).split())
            lines.append((name, f"{res.get('status')}: {reason}"[:60],
                          "", "", "", "", "", "", ""))
            continue
        for r in res["rows"]:
            base = _fmt(r["baseline"])
            if r["baseline_name"]:
                base = f"{base} ({r['baseline_name']})" if r["baseline"] is not None \
                    else f"not run ({r['baseline_name']})"
            lines.append((name, r["metric"], r["unit"], _fmt(r["synthmon"]), base,
                          _fmt(r["ratio"]) + ("x" if r["ratio"] is not None else ""),
                          r["target"], _fmt(r["pass"]) if r["pass"] is not None else "",
                          r.get("detail", "")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                   .rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _clean(obj: Any) -> Any:
    """JSON without Infinity/NaN: they become strings."""
    if isinstance(obj, float) and (math.isinf(obj) or math.isnan(obj)):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.only or list(CASES)
    cores = Cores.detect()
    pin_self(cores.others)
    notes: list[str] = []
    if not args.quick and not args.no_install:
        notes += servers.ensure_installed([servers.BLACKBOX, servers.NGINX])
    have_blackbox = (servers.BLACKBOX not in args.pretend_missing
                     and servers.which(servers.BLACKBOX) is not None)
    have_nginx = (servers.NGINX not in args.pretend_missing
                  and servers.which(servers.NGINX) is not None)
    if not have_blackbox:
        notes.append("prometheus-blackbox-exporter not installed: blackbox baselines skipped")
    if not have_nginx:
        notes.append("nginx not installed: a small Python asyncio server is the HTTP target")
    both_loops = not args.one_loop and not args.quick
    if len(os.sched_getaffinity(0) | cores.subject) < 2:
        notes.append("one core only: subject and load share it")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    meta = {"quick": args.quick, "started_at": time.time(),
            "loadavg_at_start": os.getloadavg(), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "subject_cpus": sorted(cores.subject), "other_cpus": sorted(cores.others),
            "blackbox": have_blackbox, "nginx": have_nginx, "both_loops": both_loops,
            "notes": notes}
    results: dict[str, Any] = {}
    t_all = time.monotonic()
    with temp_dir("synthmon-bench-") as workdir:
        ctx = Ctx(quick=args.quick, cores=cores, workdir=workdir, have_blackbox=have_blackbox,
                  have_nginx=have_nginx, both_loops=both_loops)
        for name in names:
            print(f"== {name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                res = CASES[name](ctx)
            except BenchError as exc:
                res = {"status": "error", "reason": str(exc)}
            except Exception as exc:  # report and go on with the next benchmark
                res = {"status": "error", "reason": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc()}
            res["seconds_taken"] = round(time.monotonic() - t0, 1)
            results[name] = res
            print(f"   {name}: {res['status']} in {res['seconds_taken']}s", file=sys.stderr,
                  flush=True)
            if res["status"] == "error":
                print(f"   {res['reason']}", file=sys.stderr)
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                (args.keep_logs / log.name).write_bytes(log.read_bytes())
    meta["seconds_taken"] = round(time.monotonic() - t_all, 1)
    meta["loadavg_at_end"] = os.getloadavg()
    doc = {"meta": meta, "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(doc), indent=2, sort_keys=False) + "\n")
    tmp.replace(args.output)
    print(render_table(results))
    print(f"\nwrote {args.output} ({meta['seconds_taken']}s)")
    return 1 if any(r["status"] == "error" for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
