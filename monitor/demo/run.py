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


VARIANTS = ("no_token", "expired", "not_yet_valid", "bad_signature", "alg_none",
            "wrong_issuer", "wrong_audience", "token_in_query_only", "bypass_headers")
_WS_PATHS = ("ws-golden-path", "ws-alternate-path", "ws-subprotocol-only")
_MAIN_PATH = ("ws-golden-path", "ws-subprotocol-only")
_NEGATIVE_MAIN = ("ws-rejects-bad-token", *(f"ws-fails-closed@{v}" for v in VARIANTS))
_HTTP = ("health", "api-health", "discovery-services", "mcp-config", "mcp-servers",
         "messages-redirects", "threads-requires-auth", "threads-with-token", "websocket-info")


def _all(names: tuple[str, ...], outcome: str) -> dict[str, str]:
    return dict.fromkeys(names, outcome)


def _got_in(*variants: str) -> dict[str, str]:
    return {f"ws-fails-closed@{v}": "auth_not_enforced" for v in variants}


# The incident first, then the other regressions of PRODUCT.md and issue 12. ``fails`` names
# runs by key: a negative probe's variants as ws-fails-closed@VARIANT.
INCIDENT = Regression(
    "ws_route_missing",
    {"ws-golden-path": "handshake_rejected", "ws-subprotocol-only": "handshake_rejected"},
    "403 to the upgrade; a plain GET of the path answers 200 JSON; /ws stays green")
REGRESSIONS: tuple[Regression, ...] = (
    INCIDENT,
    Regression("upgrade_json", _all((*_MAIN_PATH, *_NEGATIVE_MAIN), "not_upgraded"),
               "200 JSON instead of 101, as when a proxy drops Upgrade; the negative "
               "probes learn nothing"),
    Regression("auth_rejected_before_accept", _all(_WS_PATHS, "handshake_rejected"),
               "403 on both paths: the token is refused"),
    Regression("close_1008", _all(_WS_PATHS, "auth_rejected"),
               "101, then AUTH_FAILED and close 1008"),
    Regression("close_1011", _all(_WS_PATHS, "closed_by_server"),
               "101, then close 1011 (not ready)"),
    Regression("events_missing", {"ws-golden-path": "unexpected_message"},
               "the agent skips tool_executing / tool_completed"),
    Regression("auth_not_enforced",
               {"ws-rejects-bad-token": "auth_not_enforced", **_got_in(*VARIANTS)},
               "a wrong token, or none, gets in"),
    # Every answer and every agent event 1.1 s late: over the 1 s budgets of api-health and of
    # the handshake, while the event flow (5 events) still ends within the demo's timeout.
    Regression("slow", {"api-health": "slow", "ws-golden-path": "slow"},
               "answers 1.1 s late, over the 1 s budgets", slow_delay=1.1),
    Regression("strict_subprotocol", {},
               "fails clients offering only jwt.<token>; these probes pass"),
    Regression("auth_demo_mode", {"threads-requires-auth": "unexpected_status",
                                  **_got_in("no_token", "token_in_query_only")},
               "no token is let in as a demo user: ws-fails-closed@no_token"),
    Regression("auth_emergency_bypass",
               {"ws-rejects-bad-token": "auth_not_enforced",
                **_got_in(*(v for v in VARIANTS if v not in ("no_token",
                                                             "token_in_query_only")))},
               "auth service 'down': any token is trusted unchecked"),
    Regression("auth_test_headers", _got_in("bypass_headers"),
               "X-E2E-Test: true lets a bad token in"),
    Regression("auth_lax_validation",
               _got_in("expired", "not_yet_valid", "alg_none", "wrong_issuer",
                       "wrong_audience"),
               "unsigned, expired and foreign-claim tokens accepted"),
    Regression("auth_query_token", _got_in("token_in_query_only"),
               "?token= accepted (tokens end up in access logs)"),
    Regression("token_echo", {"threads-with-token": "token_reflected",
                              **_all(_WS_PATHS, "token_reflected")},
               "the jwt.<token> offer echoed as the subprotocol; an X-Auth-Echo header"),
    Regression("upgrade_405", {"websocket-info": "unexpected_status",
                               **_all((*_MAIN_PATH, *_NEGATIVE_MAIN), "handshake_rejected")},
               "a REST route answers 405: the negative probes learn nothing about auth"),
    Regression("not_ready_503", {**_all(_HTTP, "unexpected_status"),
                                 **_all((*_WS_PATHS, *_NEGATIVE_MAIN), "handshake_rejected")},
               "503 + Retry-After from a readiness gate, everywhere"),
    Regression("rate_limited_429", _all(_WS_PATHS, "handshake_rejected"),
               "429 + Retry-After to every upgrade"),
    Regression("close_without_answer",
               _all((*_MAIN_PATH, *_NEGATIVE_MAIN), "connection_reset"),
               "the main path hangs up on the upgrade; the diagnostic GET still answers"),
    Regression("close_1003", _all(_WS_PATHS, "closed_by_server"),
               "101, then 1003 No supported subprotocols"),
    Regression("close_1000_before_welcome", _all(_WS_PATHS, "closed_by_server"),
               "101, then a clean 1000 'cleanup' before the welcome"),
    Regression("close_1013", _all(_WS_PATHS, "closed_by_server"),
               "101, then 1013 try again later"),
    Regression("drop_after_accept", _all(_WS_PATHS, "closed_by_server"),
               "101, then the TCP connection dropped (1006)"),
    Regression("events_wrapped", {}, "events as {type: system_message, event: ...}; the "
               "golden path reads [event, type] and passes"),
    Regression("events_aliased", {}, "agent_start, tool_execute, ...; the aliases pass"),
    Regression("events_duplicated", {}, "every event twice; counted, the golden path passes"),
    Regression("agent_dies", {"ws-golden-path": "message_timeout"},
               "no agent_completed; the evidence times the events that came"),
    Regression("agent_slow", {"ws-golden-path": "slow"},
               "agent_completed 5.5 s late: over the events step's 5 s budget",
               slow_delay=5.5),
)


def demo_env(secret: str, sim_url: str, sim_ws_url: str, interval: float) -> dict[str, str]:
    """The environment the shipped probes.yaml runs with in the demo."""
    return {
        "JWT_SECRET_STAGING": secret,
        "STAGING_URL": sim_url,
        "STAGING_WS_URL": sim_ws_url,
        "PROBE_INTERVAL": f"{interval:g}s",
        "PROBE_TIMEOUT": f"{min(10.0, interval * 0.8):g}s",
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
