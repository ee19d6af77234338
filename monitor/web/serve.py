"""The daemon with its endpoints, until SIGTERM: what ``synthmon run`` and the demo serve."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Mapping

import structlog
from aiohttp import web

from monitor.config import ConfigError, ConfigPaths, config_name
from monitor.redact import Redactor


async def start_server(app: web.Application, host: str, port: int,
                       tls: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=tls)
    await site.start()
    return runner


async def serve_daemon(config: ConfigPaths, listen: tuple[str, int], location: str | None = None,
                       shard: tuple[int, int] | None = None,
                       redactor: Redactor | None = None,
                       web_config: str | None = None,
                       env: Mapping[str, str] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT. Exit code 1 if the first config load or the
    web config fails."""
    from monitor.daemon import NO_PROBES_DETAIL, Daemon, DaemonOptions
    from monitor.web.server import build_app
    from monitor.web.webconfig import BasicAuth, WebConfigError, load_web_config

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
    daemon = Daemon(DaemonOptions(config_path=config, location=location, shard=shard,
                                  env=env),
                    redactor=redactor)
    try:
        await daemon.start()
    except ConfigError as exc:
        log.error("config_invalid", errors=exc.problems)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        await daemon.stop()
        return 1
    if daemon.config is not None and not daemon.config.probes:
        # Logged by the daemon too; said on stderr as well, where whoever started it looks.
        print(f"synthmon: WARNING: {config_name(config)}: {NO_PROBES_DETAIL}", file=sys.stderr)
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
