"""``synthmon demo``: the staging simulator and the daemon with the shipped probes, on
loopback, so a newcomer sees metrics, the status page and a failing probe within a minute."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.text import Text

from monitor.config import SHIPPED_CONFIG, VARIANTS, parse_duration
from monitor.demo.simulator.rest import DEMO_PASSWORD
from monitor.links import NO_LINKS, Links
from monitor.redact import Redactor
from monitor.sinks.log import configure_logging
from monitor.web.serve import serve_daemon

# The HS256 secret the demo's simulator accepts and its probes sign with. Fixed and published
# (README) on purpose: `synthmon once` in a second terminal must be able to use it, and a value
# that guards nothing but a loopback look-alike is no secret. The demo never reads
# JWT_SECRET_STAGING from the environment, so a real staging secret exported in the user's
# shell is neither used against the simulator nor printed in the banner.
# 32 bytes at least: PyJWT warns, on the demo's screen, of a shorter HMAC key for HS256.
DEMO_SECRET = "synthmon-demo-only-not-a-real-secret"
# The simulator's delay in mode slow, in the demo: over the 1 s budgets of api-health and of
# the golden path's handshake, while the event flow (5 events) still ends within the demo's
# 8 s timeout, so that `slow` alone turns probes red (the simulator's own default, 0.3 s,
# turns nothing red under the shipped budgets).
DEMO_SLOW_DELAY = 1.1


@dataclass(frozen=True)
class Regression:
    """A simulator mode and what the shipped probes report in it (checked by a test)."""

    mode: str
    fails: dict[str, str]  # probe -> outcome
    seen: str  # one line: what to look for on the status page
    slow_delay: float | None = None


_WS_PATHS = ("ws-golden-path", "ws-alternate-path", "ws-subprotocol-only", "ws-header-only")
_MAIN_PATH = ("ws-golden-path", "ws-subprotocol-only", "ws-header-only")
_OFFERS_TOKEN = ("ws-golden-path", "ws-alternate-path", "ws-subprotocol-only")
_NEGATIVE_MAIN = ("ws-rejects-bad-token", *(f"ws-fails-closed@{v}" for v in VARIANTS))
_FLOW = "e2e-chat"
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
    {"ws-golden-path": "handshake_rejected", "ws-subprotocol-only": "handshake_rejected",
     "ws-header-only": "handshake_rejected", "e2e-chat": "handshake_rejected"},
    "ws-golden-path red, 403 to the upgrade, a plain GET of the path answers 200 JSON; "
    "ws-alternate-path (/ws) stays green")
REGRESSIONS: tuple[Regression, ...] = (
    INCIDENT,
    Regression("upgrade_json", _all((*_MAIN_PATH, *_NEGATIVE_MAIN, _FLOW), "not_upgraded"),
               "the ws-* probes of /api/v1/websocket red, not_upgraded: 200 JSON instead of "
               "101, as when a proxy drops Upgrade; the negative probes learn nothing"),
    Regression("auth_rejected_before_accept", _all((*_WS_PATHS, _FLOW), "handshake_rejected"),
               "the ws-* probes with the token red, one incident card, handshake_rejected, "
               "403 on both paths: credentials suspected"),
    Regression("close_1008", _all((*_WS_PATHS, _FLOW), "auth_rejected"),
               "the ws-* probes with the token red, auth_rejected: 101, then AUTH_FAILED "
               "and close 1008"),
    Regression("close_1011", _all((*_WS_PATHS, _FLOW), "closed_by_server"),
               "the ws-* probes with the token red, closed_by_server: 101, then close 1011 "
               "(not ready)"),
    Regression("events_missing", {"ws-golden-path": "unexpected_message"},
               "ws-golden-path red, unexpected_message: tool_executing / tool_completed "
               "skipped"),
    Regression("auth_not_enforced",
               {"ws-rejects-bad-token": "auth_not_enforced", **_got_in(*VARIANTS)},
               "ws-rejects-bad-token and ws-fails-closed@* red, auth_not_enforced: a wrong "
               "token, or none, gets in"),
    Regression("slow", {"api-health": "slow", "ws-golden-path": "slow",
                        "e2e-chat": "message_timeout"},
               f"api-health and ws-golden-path amber, slow: answers {DEMO_SLOW_DELAY:g} s late, "
               "over their 1 s budgets; e2e-chat red, message_timeout: its agent's five "
               "events take longer than its 5 s", slow_delay=DEMO_SLOW_DELAY),
    # The incident's aftermath: the server answers jwt-auth whatever the client offered.
    # Clients that offer jwt-auth (the golden path) do not notice; ws-header-only offers no
    # subprotocol, as a server-side client does, and fails the negotiation.
    Regression("strict_subprotocol", {"ws-header-only": "subprotocol_mismatch"},
               "ws-header-only red, subprotocol_mismatch: the server answers jwt-auth, "
               "which the client did not offer"),
    Regression("subprotocol_mismatch",
               {"ws-golden-path": "subprotocol_mismatch", "ws-alternate-path":
                "subprotocol_mismatch", "ws-subprotocol-only": "subprotocol_mismatch"},
               "ws-golden-path, ws-alternate-path and ws-subprotocol-only red, "
               "subprotocol_mismatch: 101 without the jwt-auth subprotocol they asked for"),
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
    # ws-header-only offers no jwt.<token> subprotocol: nothing of its to echo.
    Regression("token_echo", {"threads-with-token": "token_reflected",
                              **_all(_OFFERS_TOKEN, "token_reflected")},
               "the jwt.<token> offer echoed as the subprotocol; an X-Auth-Echo header"),
    Regression("upgrade_405", {"websocket-info": "unexpected_status",
                               **_all((*_MAIN_PATH, *_NEGATIVE_MAIN, _FLOW),
                                      "handshake_rejected")},
               "a REST route answers 405: the negative probes learn nothing about auth"),
    Regression("not_ready_503", {**_all((*_HTTP, "chat-stream", _FLOW), "unexpected_status"),
                                 **_all((*_WS_PATHS, *_NEGATIVE_MAIN), "handshake_rejected")},
               "503 + Retry-After from a readiness gate, everywhere"),
    Regression("rate_limited_429", {**_all((*_WS_PATHS, _FLOW), "handshake_rejected"),
                                    "chat-stream": "unexpected_status"},
               "429 + Retry-After to every upgrade and to chat-stream"),
    Regression("close_without_answer",
               _all((*_MAIN_PATH, *_NEGATIVE_MAIN, _FLOW), "connection_reset"),
               "the main path hangs up on the upgrade; the diagnostic GET still answers"),
    Regression("close_1003", _all((*_WS_PATHS, _FLOW), "closed_by_server"),
               "101, then 1003 No supported subprotocols"),
    Regression("close_1000_before_welcome", _all((*_WS_PATHS, _FLOW), "closed_by_server"),
               "101, then a clean 1000 'cleanup' before the welcome"),
    Regression("close_1013", _all((*_WS_PATHS, _FLOW), "closed_by_server"),
               "101, then 1013 try again later"),
    Regression("drop_after_accept", _all((*_WS_PATHS, _FLOW), "closed_by_server"),
               "101, then the TCP connection dropped (1006)"),
    Regression("events_wrapped", {}, "events as {type: system_message, event: ...}; the "
               "golden path reads [event, type] and passes"),
    Regression("events_aliased", {}, "agent_start, tool_execute, ...; the aliases pass"),
    Regression("events_duplicated", {}, "every event twice; counted, the golden path passes"),
    Regression("agent_dies", {"ws-golden-path": "message_timeout",
                              "e2e-chat": "message_timeout"},
               "no agent_completed; the evidence times the events that came"),
    Regression("agent_slow", {"ws-golden-path": "slow", "e2e-chat": "message_timeout"},
               "agent_completed 5.5 s late: over the events step's 5 s budget (slow), and "
               "past e2e-chat's 5 s wait (message_timeout)", slow_delay=5.5),
    # A chat whose answer streams (Server-Sent Events), and the ways it stops streaming.
    Regression("stream_json", {"chat-stream": "not_event_stream"},
               "chat-stream red, not_event_stream: a JSON error with status 200 instead of "
               "the stream"),
    Regression("stream_silent", {"chat-stream": "stream_stalled"},
               "chat-stream red, stream_stalled: 200 headers, then nothing"),
    Regression("stream_gap", {"chat-stream": "stream_stalled"},
               "chat-stream red, stream_stalled: a 3 s silence mid-stream, over its max_gap"),
    Regression("stream_cut", {"chat-stream": "stream_incomplete"},
               "chat-stream red, stream_incomplete: cut mid-body before [DONE]"),
    Regression("stream_malformed", {"chat-stream": "unexpected_message"},
               "chat-stream red, unexpected_message: a chunk whose data is not JSON"),
    Regression("stream_buffered", {"chat-stream": "stream_buffered"},
               "chat-stream red, stream_buffered: nothing for 4 s, then every event at once, "
               "as a buffering proxy releases it"),
    # The end-to-end suite's steps, each broken on its own (issue 23): e2e-chat names the
    # failing step.
    Regression("login_refused", {"e2e-chat": "unexpected_status"},
               "e2e-chat red at step login, unexpected_status: 401 to the right password"),
    Regression("token_in_header", {"e2e-chat": "assertion_failed"},
               "e2e-chat red at step login, assertion_failed: the token came in a header, "
               "not in the body it is extracted from"),
    Regression("login_echoes_password", {"e2e-chat": "assertion_failed"},
               "e2e-chat red at step login, assertion_failed: the answer carries the "
               "password back (shown <redacted>)"),
    Regression("thread_create_fails", {"e2e-chat": "unexpected_status"},
               "e2e-chat red at step create-thread, unexpected_status: 500; the cleanup is "
               "skipped, no thread to delete"),
    Regression("thread_create_200", {"e2e-chat": "unexpected_status"},
               "e2e-chat red at step create-thread, unexpected_status: 200 instead of 201; "
               "the thread it made is still deleted"),
    Regression("events_never_complete", {"e2e-chat": "message_timeout"},
               "e2e-chat red at step chat, message_timeout: the agent on the thread thinks "
               "aloud and never completes (ws-golden-path, without a thread, stays green)"),
    Regression("thread_delete_fails", {},
               "e2e-chat stays green: its cleanup failing (500) is evidence in its detail, "
               "never the outcome"),
)


def demo_env(secret: str, sim_url: str, sim_ws_url: str, interval: float) -> dict[str, str]:
    """The environment the shipped probes.yaml runs with in the demo."""
    timeout = min(10.0, interval * 0.8)
    delay = min(5.0, interval * 0.1)
    # e2e-chat's cleanup runs after its timeout, within the interval.
    cleanup = min(2.0, interval * 0.15)
    # The retry only where it fits the interval (a run and its retry must end before the
    # next run); at the demo's 10 s interval the 8 s timeout leaves no room for it.
    retries = 1 if (timeout + cleanup) * 2 + delay < interval else 0
    return {
        "JWT_SECRET_STAGING": secret,
        "E2E_PASSWORD": DEMO_PASSWORD,
        "STAGING_URL": sim_url,
        "STAGING_WS_URL": sim_ws_url,
        "PROBE_INTERVAL": f"{interval:g}s",
        "PROBE_TIMEOUT": f"{timeout:g}s",
        "PROBE_CLEANUP_TIMEOUT": f"{cleanup:g}s",
        "PROBE_RETRIES": str(retries),
        "PROBE_RETRY_DELAY": f"{delay:g}s",
    }


def _switch_command(switch: str, r: Regression) -> str:
    return f"curl -X POST {switch} -d '{{\"mode\": \"{r.mode}\"}}'"


def self_command(argv0: str | None = None) -> str:
    """How the user typed synthmon, so that the commands the banner prints work as printed:
    ``make run`` starts ``.venv/bin/synthmon``, which is not on the PATH."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name != "synthmon":
        return "python -m monitor"  # python -m monitor, or a test harness
    on_path = shutil.which("synthmon")
    if on_path and Path(on_path).resolve() == Path(argv0).resolve():
        return "synthmon"
    return shlex.quote(argv0)


def export_line(env: dict[str, str]) -> str:
    """The ``export`` that lets a second terminal run the shipped probes against the demo."""
    keys = ("JWT_SECRET_STAGING", "E2E_PASSWORD", "STAGING_URL", "STAGING_WS_URL")
    return "export " + " ".join(f"{k}={shlex.quote(env[k])}" for k in keys)


def banner_text(daemon_url: str, sim_url: str, interval: float = 10.0,
                mode: str = "healthy", sim_ws_url: str | None = None,
                synthmon: str = "synthmon") -> Text:
    """The one screen a newcomer reads: where to look, and how to break things."""
    env = demo_env(DEMO_SECRET, sim_url, sim_ws_url or "ws" + sim_url.removeprefix("http"),
                   interval)
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
    line("(/ws, same token) stays green, which points at the route, not the credentials: one")
    line("incident card for the three probes of the path, its cross-check says route suspected. "
         "Metrics:")
    command(f"curl -s {daemon_url}/metrics | grep '^probe_success{{.*ws-'")
    line("Heal it:")
    command(f"curl -X POST {switch} -d '{{\"mode\": \"healthy\"}}'")
    line()
    line("The other regressions, switched the same way (mode: what turns red):", "bold")
    for r in REGRESSIONS[1:]:
        text.append(f"  {r.mode:<28}", style="cyan")
        line(r.seen)
    line()
    line("Run the probes once, as a deploy gate would, from another terminal in this "
         "directory:", "bold")
    command(export_line(env) + "   # the demo's, demo-only")
    command(f"{synthmon} once -c probes.yaml")
    line()
    line("Failing runs are logged below as they happen; passing runs are quiet. Ctrl-C stops.",
         "dim")
    return text


def banner(daemon_url: str, sim_url: str, interval: float = 10.0, mode: str = "healthy",
           sim_ws_url: str | None = None, synthmon: str = "synthmon") -> str:
    return banner_text(daemon_url, sim_url, interval, mode, sim_ws_url, synthmon).plain


async def run_demo(args: argparse.Namespace, links: Links = NO_LINKS) -> int:
    from monitor.demo.simulator import MODES, start_simulator

    if args.mode not in MODES:
        print(f"unknown mode {args.mode!r}; one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    interval = parse_duration(args.interval)
    secret = DEMO_SECRET
    # Redacted like any secret: the probes' evidence must look as it will against staging.
    redactor = Redactor([secret])
    # Passing runs are info, failing ones warnings: a healthy demo keeps the banner on screen.
    configure_logging(redactor, level=logging.WARNING)
    sim_host, sim_port = args.simulator
    try:
        sim = await start_simulator(sim_host, sim_port, jwt_secret=secret, mode=args.mode,
                                    slow_delay=DEMO_SLOW_DELAY)
    except OSError as exc:
        print(f"cannot start the simulator on {sim_host}:{sim_port}: {exc.strerror or exc}; "
              "pick another address with --simulator", file=sys.stderr)
        return 1
    env = {**os.environ, **demo_env(secret, sim.url, sim.ws_url, interval)}
    host, port = args.listen
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(banner_text(f"http://{host}:{port}", sim.url, interval, args.mode,
                              sim.ws_url, self_command()), end="")
    sys.stderr.flush()
    try:
        # The demo's own address is where its pages are.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        links = replace(links, external_url=f"http://{shown}:{port}/")
        return await serve_daemon(str(SHIPPED_CONFIG), args.listen, redactor=redactor, env=env,
                                  links=links)
    finally:
        await sim.stop()
