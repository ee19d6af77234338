"""The ``synthmon`` command line: run, check, once, demo, schema, simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog
from aiohttp import web

from monitor import __version__, eventloop
from monitor.config import ConfigError, json_schema, load_file
from monitor.redact import Redactor

DEFAULT_CONFIG = "probes.yaml"
DEFAULT_LISTEN = "127.0.0.1:9115"
SHIPPED_CONFIG = Path(__file__).with_name("probes.yaml")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthmon", description="Synthetic HTTP and WebSocket probes for Prometheus.")
    parser.add_argument("--version", action="version", version=f"synthmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="probes file (probes.yaml)")
    run.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN),
                     help=f"address of /metrics and the status page ({DEFAULT_LISTEN})")
    run.add_argument("--location", help="adds a location label to every probe series")
    run.add_argument("--shard", type=parse_shard, help="run only shard I of N (I/N)")
    run.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    run.add_argument("--web-config", metavar="WEB_YML",
                     help="TLS and basic auth for the endpoints, in Prometheus' web config "
                          "format (tls_server_config, basic_auth_users)")
    _loop_option(run)

    check = sub.add_parser("check", help="validate a probes file; exit 1 on errors")
    check.add_argument("-c", "--config", default=DEFAULT_CONFIG)

    once = sub.add_parser("once", help="run every probe once and print the results")
    once.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    once.add_argument("--probe", action="append", default=[], help="only this probe (repeatable)")
    once.add_argument("--format", choices=("table", "json"), default="table")
    once.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="colour the table (auto: on a terminal; NO_COLOR/FORCE_COLOR honoured)")

    demo = sub.add_parser("demo", help="simulator + daemon with the shipped probes, on loopback")
    demo.add_argument("--listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN))
    demo.add_argument("--simulator", type=parse_listen, default=parse_listen("127.0.0.1:8000"),
                      help="address of the staging simulator (127.0.0.1:8000)")
    demo.add_argument("--mode", default="healthy", help="start the simulator in this mode")
    demo.add_argument("--interval", default="10s", help="probe interval in the demo (10s)")
    _loop_option(demo)

    sim = sub.add_parser("simulator", help="run only the staging simulator")
    sim.add_argument("--listen", type=parse_listen, default=parse_listen("127.0.0.1:8000"))
    sim.add_argument("--mode", default="healthy")
    sim.add_argument("--jwt-secret-env", default="JWT_SECRET_STAGING",
                     help="environment variable with the HS256 secret the simulator accepts")

    sub.add_parser("schema", help="print the JSON Schema of probes.yaml")
    return parser


def _loop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.DEFAULT,
                        help=f"event loop to run on ({eventloop.DEFAULT})")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            return cmd_check(args.config)
        if args.command == "schema":
            print(json.dumps(json_schema(), indent=2))
            return 0
        if args.command == "once":
            from monitor.once import run_once

            return run_once(args.config, args.probe, args.format, args.color)
        if args.command == "run":
            return eventloop.run(_run(args), args.event_loop)
        if args.command == "demo":
            from monitor.demo import run_demo

            return eventloop.run(run_demo(args), args.event_loop)
        if args.command == "simulator":
            return _simulator(args)
    except KeyboardInterrupt:
        return 130
    return 2


def cmd_check(path: str) -> int:
    try:
        config = load_file(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} error(s)", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    # A missing secret does not stop the daemon (that probe reports config_error), but a
    # pre-deploy check must not call such a file good.
    for warning in config.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    missing = [w for w in config.warnings if "is not set" in w or "does not exist" in w]
    print(f"{path}: {len(config.probes)} probes OK" if not missing
          else f"{path}: {len(missing)} secret(s) missing")
    return 1 if missing else 0


async def start_server(app: web.Application, host: str, port: int,
                       tls: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=tls)
    await site.start()
    return runner


async def serve_daemon(config: str, listen: tuple[str, int], location: str | None = None,
                       shard: tuple[int, int] | None = None,
                       redactor: Redactor | None = None,
                       web_config: str | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT. Exit code 1 if the first config load or the
    web config fails."""
    from monitor.daemon import Daemon, DaemonOptions
    from monitor.server import build_app
    from monitor.webconfig import BasicAuth, WebConfigError, load_web_config

    log = structlog.get_logger("synthmon")
    tls: ssl.SSLContext | None = None
    auth: BasicAuth | None = None
    if web_config is not None:
        try:
            endpoints = load_web_config(web_config)
        except WebConfigError as exc:
            log.error("web_config_invalid", errors=exc.problems)
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 1
        tls = endpoints.tls
        auth = BasicAuth(endpoints.users) if endpoints.users else None
    daemon = Daemon(DaemonOptions(config_path=config, location=location, shard=shard),
                    redactor=redactor)
    try:
        await daemon.start()
    except ConfigError as exc:
        log.error("config_invalid", errors=exc.problems)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        await daemon.stop()
        return 1
    try:
        runner = await start_server(build_app(daemon, auth), *listen, tls=tls)
    except OSError as exc:
        log.error("listen_failed", address=f"{listen[0]}:{listen[1]}", error=str(exc))
        await daemon.stop()
        return 1
    log.info("listening", address=f"{'https' if tls else 'http'}://{listen[0]}:{listen[1]}/",
             basic_auth=auth is not None)
    daemon.install_signal_handlers()
    try:
        await daemon.wait_stopped()
    finally:
        # The handlers stay until the end: a second SIGTERM or SIGINT during the drain
        # must not kill the process halfway through its orderly stop.
        try:
            await daemon.stop()
            await runner.cleanup()
        finally:
            daemon.remove_signal_handlers()
    return 0


async def _run(args: argparse.Namespace) -> int:
    from monitor.runlog import configure_logging

    redactor = Redactor()
    json_logs = None if args.log_format == "auto" else args.log_format == "json"
    configure_logging(redactor, json=json_logs)
    return await serve_daemon(args.config, args.listen, args.location, args.shard, redactor,
                              web_config=args.web_config)


def _simulator(args: argparse.Namespace) -> int:
    from monitor.simulator import MODES, serve_forever

    if args.mode not in MODES:
        print(f"unknown mode {args.mode!r}; one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    secret = os.environ.get(args.jwt_secret_env)
    if not secret:
        print(f"environment variable {args.jwt_secret_env} is not set", file=sys.stderr)
        return 2
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, jwt_secret=secret, mode=args.mode))
    return 0
