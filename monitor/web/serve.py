"""The daemon with its endpoints, until SIGTERM: what ``synthmon run`` and the demo serve."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from monitor.config import ConfigError, ConfigPaths, config_name
from monitor.links import NO_LINKS, Links
from monitor.redact import Redactor

if TYPE_CHECKING:
    from monitor.web.basicauth import BasicAuth


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
                       env: Mapping[str, str] | None = None,
                       allowed_hosts: Sequence[str] = (),
                       links: Links = NO_LINKS) -> int:
    """Run the daemon until SIGTERM/SIGINT. Exit code 1 if the first config load or the
    web config fails."""
    from monitor.daemon import NO_PROBES_DETAIL, Daemon, DaemonOptions
    from monitor.web.origin import AllowedHosts
    from monitor.web.server import build_app
    from monitor.web.webconfig import WebConfigError, load_web_config

    log = structlog.get_logger("synthmon")
    tls: ssl.SSLContext | None = None
    auth: BasicAuth | None = None
    open_health = False
    if web_config is not None:
        try:
            endpoints = load_web_config(web_config)
        except WebConfigError as exc:
            log.error("web_config_invalid", errors=exc.problems)
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 1
        tls = endpoints.tls
        if endpoints.users:
            # Here only: bcrypt (0.4 MiB) is for a daemon that checks passwords (issue 24).
            from monitor.web.basicauth import BasicAuth

            auth = BasicAuth(endpoints.users)
        open_health = endpoints.open_health_endpoints
    daemon = Daemon(DaemonOptions(config_path=config, location=location, shard=shard,
                                  env=env, links=links, own_process=True),
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
        app = build_app(daemon, auth, open_health=open_health,
                        allowed_hosts=AllowedHosts.for_listen(listen[0], allowed_hosts))
        runner = await start_server(app, *listen, tls=tls)
    except OSError as exc:
        log.error("listen_failed", address=f"{listen[0]}:{listen[1]}", error=str(exc))
        await daemon.stop()
        return 1
    log.info("listening", address=f"{'https' if tls else 'http'}://{listen[0]}:{listen[1]}/",
             basic_auth=auth is not None, open_health_endpoints=open_health)
    daemon.install_signal_handlers()
    try:
        await daemon.wait_stopped()
    finally:
        # The handlers stay until the end: a second SIGTERM or SIGINT during the drain
        # must not kill the process halfway through its orderly stop.
        try:
            await daemon.stop()
            if auth is not None:
                auth.close()  # refuses the password checks still waiting: none holds us up
            await runner.cleanup()
        finally:
            daemon.remove_signal_handlers()
    return 0
