"""``synthmon simulator``: only the staging simulator, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys


def run_simulator(args: argparse.Namespace) -> int:
    from monitor.demo.simulator import DEMO_PASSWORD, MODES, RunningSimulator, serve_forever

    if args.mode not in MODES:
        print(f"unknown mode {args.mode!r}; one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    secret = os.environ.get(args.jwt_secret_env)
    if not secret:
        print(f"environment variable {args.jwt_secret_env} is not set: export the HS256 "
              "secret the simulator accepts (the same the probes sign with)", file=sys.stderr)
        return 2
    password = os.environ.get(args.password_env) or DEMO_PASSWORD
    login = ("the demo's password" if password == DEMO_PASSWORD
             else f"the password in {args.password_env}")
    host, port = args.listen

    def ready(running: RunningSimulator) -> None:
        # Said on stdout when it listens: where, in which mode, and how to switch.
        print(f"staging simulator listening on {running.url} (WebSocket {running.ws_url}), "
              f"mode {running.sim.mode}\n"
              f"switch the mode: curl -d mode=NAME {running.url}/-/simulator/mode  "
              f"(modes: {', '.join(MODES)})\n"
              f"log in: POST {running.url}/auth/login with e2e@example.com and {login}",
              flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, jwt_secret=secret, mode=args.mode,
                                  on_ready=ready, e2e_password=password))
    return 0
