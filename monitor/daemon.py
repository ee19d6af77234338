"""The daemon: config → scheduler → probes → sinks, plus reload and shutdown.

One object owns the live config; everything else receives it. A reload validates the new
file completely before anything changes, so a bad file keeps the old config running.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import structlog

from monitor import eventloop, gcpolicy
from monitor.auth import TokenSource
from monitor.config import Config, ConfigError, ConfigPaths, Probe, config_name, load_file
from monitor.links import NO_LINKS, Links
from monitor.preload import preload
from monitor.probes.context import ProbeContext, open_context
from monitor.redact import Redactor
from monitor.result import Result
from monitor.runtime import run_with_retries
from monitor.scheduler import ProbeScheduler, in_shard, rounds
from monitor.sinks import default_sinks
from monitor.sinks.history import History
from monitor.sinks.metrics import Surfacer

NO_PROBES_DETAIL = ("the config defines no probes (empty or truncated file?); nothing is "
                    "being monitored")
SHUTDOWN_GRACE = 3.5  # SIGTERM must exit within 5 s: drain, then cancel, then close
OTLP_FLUSH_SECONDS = 0.5  # within the 5 s SIGTERM budget, after the 3.5 s grace


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    """The last failed reload, kept until a reload succeeds: the status page shows it."""

    at: float                   # unix time of the failed attempt
    path: str
    errors: tuple[str, ...]     # redacted, as logged
    running_since: float | None  # when the config still running was loaded


@dataclass(frozen=True)
class DaemonOptions:
    config_path: ConfigPaths  # what -c named: a file, a directory, or several
    location: str | None = None
    shard: tuple[int, int] | None = None
    # Where ${VAR}s and *_env secrets come from (the process environment when None): the
    # demo runs the shipped file against its simulator without touching os.environ.
    env: Mapping[str, str] | None = None
    # Where people reach this daemon and its runs' traces (--external-url, --trace-url).
    links: Links = NO_LINKS
    # The daemon has its process to itself (synthmon run, the demo), and sets the process's
    # garbage collector for it (monitor.gcpolicy); not in a test's process.
    own_process: bool = False


class Daemon:
    def __init__(self, options: DaemonOptions, redactor: Redactor | None = None) -> None:
        self.options = options
        self.redactor = redactor or Redactor()
        self.tokens = TokenSource(self.redactor, env=options.env)
        self.sinks = default_sinks(options.location, shard=options.shard,
                                   external_url=options.links.external_url)
        self.config: Config | None = None
        self.config_loaded_at: float | None = None
        self.reload_failure: ReloadFailure | None = None
        self.ready = False
        self.log = structlog.get_logger("synthmon")
        self._ctx: ProbeContext | None = None
        self._scheduler = ProbeScheduler(self._run_one, on_lag=self.surfacer.observe_lag,
                                         on_skip=self._skipped)
        self._reload_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._signal_reloads: set[asyncio.Future[tuple[bool, list[str]]]] = set()

    @property
    def config_name(self) -> str:
        return config_name(self.options.config_path)

    @property
    def surfacer(self) -> Surfacer:
        """The metrics sink: also told of scheduler lag, skipped runs and reloads."""
        return self.sinks.metrics

    @property
    def history(self) -> History:
        """The history sink, which the status page reads."""
        return self.sinks.history

    # ------------------------------------------------------------------ config

    def _load(self) -> tuple[Config, dict[str, str]]:
        """This daemon's config (its shard's probes) and the rounds of the whole file: a
        round's probes, and the flow that follows it, may sit on different shards, and
        every shard must place them alike (monitor.scheduler.rounds)."""
        config = load_file(self.options.config_path, env=self.options.env)
        in_round = rounds(config.probes)
        if self.options.shard is not None:
            mine = tuple(p for p in config.probes if in_shard(p.name, self.options.shard))
            config = replace(config, probes=mine)
        return config, in_round

    def _adopt(self, config: Config) -> None:
        for secret in config.secrets:  # before anything is logged about the new config
            self.redactor.add(secret)
        self.config = config
        self.config_loaded_at = time.time()
        preload(config)
        self.tokens.forget()
        self.sinks.configure(config)
        for warning in config.warnings:
            self.log.warning("config_warning", detail=warning)
        for missing in config.missing_secrets:
            # The probes that need it report config_error at every run until it is there.
            self.log.warning("config_warning", detail=missing.text)
        if not config.probes:
            self.log.warning("no_probes", path=self.config_name,
                             detail=NO_PROBES_DETAIL)

    async def reload(self) -> tuple[bool, list[str]]:
        """Re-read the config file. On error the running config stays."""
        async with self._reload_lock:
            try:
                config, in_round = self._load()
            except ConfigError as exc:
                self.surfacer.reloaded(False)
                self.reload_failure = ReloadFailure(
                    at=time.time(), path=self.config_name,
                    errors=tuple(self.redactor.redact(e) or "" for e in exc.problems),
                    running_since=self.config_loaded_at)
                self.log.error("config_reload_failed", errors=exc.problems,
                               path=self.config_name)
                return False, exc.problems
            self._adopt(config)
            self._scheduler.update(config.probes, in_round)
            if self.options.own_process:
                gcpolicy.settle()  # the old config's objects collected, the new one frozen
            self.surfacer.reloaded(True)
            self.reload_failure = None
            self.log.info("config_reloaded", probes=len(config.probes),
                          path=self.config_name)
            return True, []

    # ------------------------------------------------------------------ runs

    async def _run_one(self, probe: Probe) -> None:
        assert self._ctx is not None
        await run_with_retries(probe, self._ctx, self.sinks.observe)  # what record() does

    def record(self, result: Result) -> None:
        self.sinks.observe(result)

    def _skipped(self, probe: str, reason: str) -> None:
        self.surfacer.skip(reason)
        self.log.warning("probe_skipped", probe=probe, reason=reason)

    @property
    def in_flight(self) -> int:
        return self._scheduler.in_flight

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the config (raising ConfigError if the first load fails) and start probing."""
        config, in_round = self._load()
        self._adopt(config)
        self.surfacer.reloaded(True)
        self._ctx = open_context(self.redactor, self.tokens)
        self._scheduler.start(config.probes, in_round)
        if self.options.own_process:
            gcpolicy.tune()
            gcpolicy.settle()  # before any run: only what lives as long as the daemon
        self.ready = True
        self.log.info("started", probes=len(config.probes), config=self.config_name,
                      location=self.options.location, event_loop=eventloop.current(),
                      shard=f"{self.options.shard[0]}/{self.options.shard[1]}"
                      if self.options.shard else None)

    async def stop(self) -> None:
        self.ready = False
        await self._scheduler.stop(SHUTDOWN_GRACE)
        if self._ctx is not None:
            await self._ctx.close()
        # Spans still queued for a collector get half a second; a dead one cannot hold us up.
        await asyncio.to_thread(self.sinks.close, OTLP_FLUSH_SECONDS)
        self.log.info("stopped")

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload_on_signal)

    def _reload_on_signal(self) -> None:
        if self._stopping.is_set():
            return  # stopping: a reload now would schedule jobs on a scheduler going away
        task = asyncio.ensure_future(self.reload())
        self._signal_reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(self._signal_reloads.discard)

    def remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
