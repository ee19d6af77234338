"""``synthmon demo``: the staging simulator and the daemon with the shipped probes, on
loopback, so a newcomer sees metrics, the status page and a failing probe within a minute."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from monitor.config import SHIPPED_CONFIG, parse_duration
from monitor.redact import Redactor
from monitor.sinks.log import configure_logging
from monitor.web.serve import serve_daemon


@dataclass(frozen=True)
class Regression:
    """A simulator mode and what the shipped probes report in it (checked by a test)."""

    mode: str
    fails: dict[str, str]  # probe -> outcome
    seen: str
    slow_delay: float | None = None


# The incident first, then the other regressions of PRODUCT.md.
INCIDENT = Regression(
    "ws_route_missing",
    {"ws-golden-path": "handshake_rejected", "ws-subprotocol-only": "handshake_rejected"},
    "403 to the upgrade; a plain GET of the path answers 200 JSON; /ws stays green")
REGRESSIONS: tuple[Regression, ...] = (
    INCIDENT,
    Regression("upgrade_json",
               {"ws-golden-path": "not_upgraded", "ws-subprotocol-only": "not_upgraded",
                "ws-rejects-bad-token": "not_upgraded"},
               "200 JSON instead of 101, as when a proxy drops Upgrade"),
    Regression("auth_rejected_before_accept",
               {"ws-golden-path": "handshake_rejected", "ws-alternate-path": "handshake_rejected",
                "ws-subprotocol-only": "handshake_rejected"},
               "403 on both paths: the token is refused"),
    Regression("close_1008",
               {"ws-golden-path": "auth_rejected", "ws-alternate-path": "auth_rejected",
                "ws-subprotocol-only": "auth_rejected"},
               "101, then AUTH_FAILED and close 1008"),
    Regression("close_1011",
               {"ws-golden-path": "closed_by_server", "ws-alternate-path": "closed_by_server",
                "ws-subprotocol-only": "closed_by_server"},
               "101, then close 1011 (not ready)"),
    Regression("events_missing", {"ws-golden-path": "unexpected_message"},
               "the agent skips tool_executing / tool_completed"),
    Regression("auth_not_enforced", {"ws-rejects-bad-token": "auth_not_enforced"},
               "a wrong token gets in"),
    # Every answer and every agent event 1.1 s late: over the 1 s budgets of api-health and of
    # the handshake, while the event flow (5 events) still ends within the demo's timeout.
    Regression("slow", {"api-health": "slow", "ws-golden-path": "slow"},
               "answers 1.1 s late, over the 1 s budgets", slow_delay=1.1),
    Regression("subprotocol_mismatch",
               {"ws-golden-path": "subprotocol_mismatch", "ws-alternate-path":
                "subprotocol_mismatch", "ws-subprotocol-only": "subprotocol_mismatch"},
               "101 without the jwt-auth subprotocol the clients asked for"),
    Regression("strict_subprotocol", {},
               "fails clients offering only jwt.<token>; these probes pass"),
)


def demo_env(secret: str, sim_url: str, sim_ws_url: str, interval: float) -> dict[str, str]:
    """The environment the shipped probes.yaml runs with in the demo."""
    timeout = min(10.0, interval * 0.8)
    delay = min(5.0, interval * 0.1)
    # The retry only where it fits the interval (a run and its retry must end before the
    # next run); at the demo's 10 s interval the 8 s timeout leaves no room for it.
    retries = 1 if timeout * 2 + delay < interval else 0
    return {
        "JWT_SECRET_STAGING": secret,
        "STAGING_URL": sim_url,
        "STAGING_WS_URL": sim_ws_url,
        "PROBE_INTERVAL": f"{interval:g}s",
        "PROBE_TIMEOUT": f"{timeout:g}s",
        "PROBE_RETRIES": str(retries),
        "PROBE_RETRY_DELAY": f"{delay:g}s",
    }


def _switch_command(switch: str, r: Regression) -> str:
    body = f'"mode": "{r.mode}"' + ("" if r.slow_delay is None else
                                    f', "slow_delay": {r.slow_delay:g}')
    return f"curl -X POST {switch} -d '{{{body}}}'"


def banner_text(daemon_url: str, sim_url: str, interval: float = 10.0,
                mode: str = "healthy") -> Text:
    """The one screen a newcomer reads: where to look, and how to break things."""
    switch = f"{sim_url}/-/simulator/mode"
    text = Text()

    def line(s: str = "", style: str = "") -> None:
        text.append(s + "\n", style=style)

    def command(s: str) -> None:
        text.append("  ")
        line(s, "bold cyan")

    line()
    line("synthmon demo: a staging look-alike and the daemon probing it, on loopback only",
         "bold")
    line()
    places = (
        ("status page", f"{daemon_url}/", f"probes run every {interval:g} s"),
        ("metrics", f"{daemon_url}/metrics", "Prometheus text format"),
        ("results", f"{daemon_url}/api/v1/results", "JSON"),
        ("simulator", f"{sim_url}/health", "the staging look-alike"),
        ("switch", switch, f"the simulator's mode, now {mode}"),
    )
    width = max(len(url) for _, url, _ in places)
    for label, url, note in places:
        text.append(f"  {label:<13}")
        text.append(f"{url:<{width}}", style="bold")
        line(f"  {note}", "dim")
    line()
    line("Break the WebSocket the way the incident did:", "bold")
    command(_switch_command(switch, INCIDENT))
    line(f"Within {interval:g} s the status page turns red: ws-golden-path is "
         "handshake_rejected (403),")
    line("its diagnosis shows a plain GET of the path answering 200 JSON, and "
         "ws-alternate-path")
    line("(/ws, same token) stays green, which points at the route, not the credentials. "
         "Metrics:")
    command(f"curl -s {daemon_url}/metrics | grep '^probe_success{{.*ws-'")
    line("Heal it:")
    command(f"curl -X POST {switch} -d '{{\"mode\": \"healthy\"}}'")
    line()
    line("The other regressions, switched the same way (mode: what the probes see):", "bold")
    for r in REGRESSIONS[1:]:
        extra = "" if r.slow_delay is None else f' + "slow_delay": {r.slow_delay:g}'
        text.append(f"  {r.mode + extra:<30}", style="cyan")
        line(r.seen)
    line()
    line("Failing runs are logged below as they happen; passing runs are quiet. Ctrl-C stops.",
         "dim")
    return text


def banner(daemon_url: str, sim_url: str, interval: float = 10.0, mode: str = "healthy") -> str:
    return banner_text(daemon_url, sim_url, interval, mode).plain


async def run_demo(args: argparse.Namespace) -> int:
    from monitor.demo.simulator import MODES, start_simulator

    if args.mode not in MODES:
        print(f"unknown mode {args.mode!r}; one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    interval = parse_duration(args.interval)
    secret = os.environ.get("JWT_SECRET_STAGING") or secrets.token_urlsafe(24)
    redactor = Redactor([secret])
    # Passing runs are info, failing ones warnings: a healthy demo keeps the banner on screen.
    configure_logging(redactor, level=logging.WARNING)
    sim_host, sim_port = args.simulator
    try:
        sim = await start_simulator(sim_host, sim_port, jwt_secret=secret, mode=args.mode)
    except OSError as exc:
        print(f"cannot start the simulator on {sim_host}:{sim_port}: {exc.strerror or exc}; "
              "pick another address with --simulator", file=sys.stderr)
        return 1
    env = {**os.environ, **demo_env(secret, sim.url, sim.ws_url, interval)}
    host, port = args.listen
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(banner_text(f"http://{host}:{port}", sim.url, interval, args.mode), end="")
    sys.stderr.flush()
    try:
        return await serve_daemon(str(SHIPPED_CONFIG), args.listen, redactor=redactor, env=env)
    finally:
        await sim.stop()
