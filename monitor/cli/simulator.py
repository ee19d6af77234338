"""``synthmon simulator``: only the staging simulator, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys


def run_simulator(args: argparse.Namespace) -> int:
    from monitor.demo.simulator import MODES, serve_forever

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
