"""``synthmon run``: the daemon, with the log configured as asked."""

from __future__ import annotations

import argparse

from monitor.links import Links
from monitor.redact import Redactor
from monitor.sinks.log import configure_logging
from monitor.web.serve import serve_daemon


async def run_daemon(paths: tuple[str, ...], args: argparse.Namespace, links: Links) -> int:
    redactor = Redactor()
    json_logs = None if args.log_format == "auto" else args.log_format == "json"
    configure_logging(redactor, json=json_logs)
    return await serve_daemon(paths, args.listen, args.location, args.shard, redactor,
                              web_config=args.web_config, allowed_hosts=args.allowed_host,
                              links=links)
