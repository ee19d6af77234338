"""``synthmon demo``: the staging simulator and the daemon with the shipped probes, on
loopback, so a newcomer sees metrics, the status page and a failing probe within a minute."""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from monitor.cli import SHIPPED_CONFIG, serve_daemon
from monitor.config import parse_duration
from monitor.redact import Redactor
from monitor.runlog import configure_logging


def banner(daemon_url: str, sim_url: str, modes: tuple[str, ...]) -> str:
    switch = f"{sim_url}/-/simulator/mode"
    return f"""
synthmon demo: the built-in staging simulator and the daemon, on loopback only.

  status page     {daemon_url}/
  metrics         {daemon_url}/metrics
  results (JSON)  {daemon_url}/api/v1/results
  simulator       {sim_url}/health    (staging look-alike)
  simulator mode  {switch}

Break the WebSocket the way the incident did, then watch ws-golden-path fail:
  curl -X POST {switch} -d '{{"mode": "ws_route_missing"}}'
and heal it again:
  curl -X POST {switch} -d '{{"mode": "healthy"}}'
Modes: {", ".join(modes)}

Probe results are logged below, one line per run. Ctrl-C stops.
"""


async def run_demo(args: argparse.Namespace) -> int:
    from monitor.simulator import MODES, start_simulator

    if args.mode not in MODES:
        print(f"unknown mode {args.mode!r}; one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    interval = parse_duration(args.interval)
    secret = os.environ.get("JWT_SECRET_STAGING") or secrets.token_urlsafe(24)
    redactor = Redactor([secret])
    configure_logging(redactor)
    sim_host, sim_port = args.simulator
    try:
        sim = await start_simulator(sim_host, sim_port, jwt_secret=secret, mode=args.mode)
    except OSError as exc:
        print(f"cannot start the simulator on {sim_host}:{sim_port}: {exc.strerror or exc}; "
              "pick another address with --simulator", file=sys.stderr)
        return 1
    os.environ.update({
        "JWT_SECRET_STAGING": secret,
        "STAGING_URL": sim.url,
        "STAGING_WS_URL": sim.ws_url,
        "PROBE_INTERVAL": f"{interval:g}s",
        "PROBE_TIMEOUT": f"{min(10.0, interval * 0.8):g}s",
    })
    host, port = args.listen
    print(banner(f"http://{host}:{port}", sim.url, MODES), file=sys.stderr, flush=True)
    try:
        return await serve_daemon(str(SHIPPED_CONFIG), args.listen, redactor=redactor)
    finally:
        await sim.stop()
