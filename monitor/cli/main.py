"""The ``synthmon`` command line: the parser and the dispatch to one module a command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from monitor import __version__, eventloop
from monitor.config import json_schema
from monitor.config.fields import parse_retries
from monitor.demo.modes import MODES
from monitor.links import (
    EXTERNAL_URL_ENV,
    TRACE_ID,
    TRACE_URL_ENV,
    LinkError,
    Links,
    links_from,
)

DEFAULT_CONFIG = "probes.yaml"
DEFAULT_LISTEN = "127.0.0.1:9115"
CONFIG_HELP = (f"the probes file ({DEFAULT_CONFIG}); a directory stands for every *.yaml "
               "(and *.yml) in it; repeat -c, or name several, to read several as one")
MODES_HELP = ", ".join(MODES)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT like {DEFAULT_LISTEN}; got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_shard(value: str) -> tuple[int, int]:
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise argparse.ArgumentTypeError(f"must be I/N with 0 <= I < N, like 0/3; got {value!r}")
    return int(index), int(count)


def parse_retries_arg(value: str) -> int:
    try:
        return parse_retries(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmon", description="Synthetic HTTP and WebSocket probes for Prometheus.")
    parser.add_argument("--version", action="version", version=f"synthmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    _config_option(run, "; all re-read on SIGHUP or POST /-/reload")
    run.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN),
                     help=f"address of /metrics and the status page ({DEFAULT_LISTEN})")
    run.add_argument("--location", help="adds a location label to every probe series")
    run.add_argument("--shard", type=parse_shard, help="run only shard I of N (I/N)")
    run.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                     help="log lines on stderr: json (one object a line, for log shippers), "
                          "console (readable), or auto: console on a terminal, else json")
    run.add_argument("--web-config", metavar="WEB_YML",
                     help="TLS and basic auth for /metrics, the status page and the API, in "
                          "Prometheus' web config format (tls_server_config, "
                          "basic_auth_users with bcrypt hashes; open_health_endpoints: true "
                          "leaves /-/healthy and /-/ready open)")
    run.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="a host name browsers may reach the daemon by, besides IP "
                          "addresses, localhost and this machine's names (repeatable); "
                          "a browser's request by any other name is refused (DNS rebinding)")
    _links_options(run, external=True)
    _loop_option(run)

    check = sub.add_parser(
        "check", help="validate a probes file: every problem with file:line, exit 1 on any "
                      "(a missing secret and a file without probes are problems)")
    _config_option(check)

    once = sub.add_parser("once", help="run every probe once, print the results; exit 0 only "
                                       "if all succeeded (a deploy gate)")
    _config_option(once)
    once.add_argument("--probe", action="append", default=[], metavar="NAME[@VARIANT]",
                      help="only this probe (repeatable); NAME runs all of a negative probe's "
                           "variants, NAME@VARIANT one of them")
    once.add_argument("--format", choices=("table", "json", "junit"), default="table",
                      help="table (for people), json (one record a probe), or junit (JUnit "
                           "XML for CI: a testcase per probe, a failure per failed run)")
    once.add_argument("--retries", type=parse_retries_arg, default=None,
                      help="retries of a failed probe, 0 to 5 (default: each probe's own "
                           "retries; 0 turns them off)")
    once.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colour the table (auto: on a terminal; NO_COLOR/FORCE_COLOR honoured)")
    _links_options(once, external=False)

    demo = sub.add_parser("demo", help="simulator + daemon with the shipped probes, on loopback")
    demo.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN),
                      help=f"address of the daemon's /metrics and status page ({DEFAULT_LISTEN})")
    demo.add_argument("--simulator", type=parse_listen, default=parse_listen("127.0.0.1:8000"),
                      help="address of the staging simulator (127.0.0.1:8000)")
    demo.add_argument("--mode", default="healthy", choices=MODES, metavar="MODE",
                      help="start the simulator in this mode (healthy); one of: " + MODES_HELP)
    demo.add_argument("--interval", default="10s", help="probe interval in the demo (10s)")
    _links_options(demo, external=False)
    _loop_option(demo)

    sim = sub.add_parser("simulator", help="run only the staging simulator")
    sim.add_argument("--listen", type=parse_listen, default=parse_listen("127.0.0.1:8000"),
                     help="address to listen on (127.0.0.1:8000)")
    sim.add_argument("--mode", default="healthy", choices=MODES, metavar="MODE",
                     help="start in this mode (healthy); one of: " + MODES_HELP
                          + "; switch later with POST /-/simulator/mode")
    sim.add_argument("--jwt-secret-env", default="JWT_SECRET_STAGING",
                     help="environment variable with the HS256 secret the simulator accepts")
    sim.add_argument("--password-env", default="E2E_PASSWORD",
                     help="environment variable with the password of the e2e user "
                          "(e2e@example.com) at POST /auth/login; unset, the demo's published "
                          "one")

    sub.add_parser("schema", help="print the JSON Schema of probes.yaml")
    return parser


def _config_option(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument("-c", "--config", action="extend", nargs="+", metavar="PATH",
                        help=CONFIG_HELP + more)


def config_paths(args: argparse.Namespace) -> tuple[str, ...]:
    """The paths -c named, in order (probes.yaml when none)."""
    return tuple(args.config or (DEFAULT_CONFIG,))


def _links_options(parser: argparse.ArgumentParser, external: bool) -> None:
    if external:
        parser.add_argument(
            "--external-url", metavar="URL",
            help="the URL people reach this daemon at, as Prometheus' --web.external-url "
                 f"(default ${EXTERNAL_URL_ENV}); exported as synthmon_external_url_info so "
                 "that every page and ticket links to URL/probe/NAME")
    parser.add_argument(
        "--trace-url", metavar="TEMPLATE",
        help=f"your tracing backend's URL for one trace, with {TRACE_ID} where the id goes "
             f"(default ${TRACE_URL_ENV}), e.g. https://tempo.example.com/trace/{TRACE_ID}: "
             "every run's trace id becomes that link")


def links_of(args: argparse.Namespace) -> Links:
    """The links of a command's flags (or their environment variables); a bad value
    exits 2 with the reason, as argparse does."""
    try:
        return links_from(getattr(args, "external_url", None), args.trace_url)
    except LinkError as exc:
        print(f"synthmon {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _loop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.DEFAULT,
                        help=f"event loop to run on ({eventloop.DEFAULT})")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            from monitor.cli.check import cmd_check

            return cmd_check(config_paths(args))
        if args.command == "schema":
            print(json.dumps(json_schema(), indent=2))
            return 0
        if args.command == "once":
            from monitor.cli.once import run_once

            return run_once(config_paths(args), args.probe, args.format, args.color,
                            retries=args.retries, links=links_of(args))
        if args.command == "run":
            from monitor.cli.run import run_daemon

            return eventloop.run(run_daemon(config_paths(args), args, links_of(args)),
                                 args.event_loop)
        if args.command == "demo":
            from monitor.demo.run import run_demo

            return eventloop.run(run_demo(args, links_of(args)), args.event_loop)
        if args.command == "simulator":
            from monitor.cli.simulator import run_simulator

            return run_simulator(args)
    except KeyboardInterrupt:
        return 130
    return 2
