"""The resolved config: what the scheduler and the probes receive after a load.

Defaults are applied and auth references resolved, so nothing downstream looks anything up
in the file again. Both records are frozen: a reload builds new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config.fields import retry_budget
from monitor.config.schema import JwtAuth, ProbeSpec, TokenEndpointAuth
from monitor.runname import run_name


@dataclass(frozen=True, slots=True)
class Timing:
    """When and how long a probe runs: shared by the probes that time alike. One slot on
    Probe for these four keeps a Probe in the allocator's size class it had with two (issue
    5's memory budget: two more slots cost ~100 bytes of RSS a probe)."""

    interval: float
    timeout: float
    retries: int = 0  # extra attempts after a failed one (see monitor.runtime)
    retry_delay: float = 0.0
    # How long a run may go on after its timeout (a flow's always steps, each bounded).
    overrun: float = 0.0

    @property
    def run_bound(self) -> float:
        """The longest one attempt may take."""
        return self.timeout + self.overrun

    @property
    def budget(self) -> float:
        """The longest a run may take with all its retries: under the interval, so that
        retries never overlap the next scheduled run."""
        return retry_budget(self.run_bound, self.retries, self.retry_delay)


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe with the defaults applied and its auth reference resolved."""

    spec: ProbeSpec
    timing: Timing
    labels: tuple[tuple[str, str], ...]
    auth_name: str | None
    auth: JwtAuth | TokenEndpointAuth | None
    trace: bool = True  # send W3C trace context (monitor.trace) on every request of a run
    tracestate: str | None = None
    # On a negative probe's variant: which way of failing open this run tries (its own
    # schedule entry, history and series; ``key`` tells it apart from its siblings).
    variant: str | None = None
    # Every secret value substituted into the config: probe runners register them with the
    # redactor, so that `once` and the daemon redact them alike.

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def interval(self) -> float:
        return self.timing.interval

    @property
    def timeout(self) -> float:
        return self.timing.timeout

    @property
    def retries(self) -> int:
        return self.timing.retries

    @property
    def retry_delay(self) -> float:
        return self.timing.retry_delay

    @property
    def budget(self) -> float:
        return self.timing.budget

    @property
    def key(self) -> str:
        """Unique per scheduled run, and the run's name in every output (monitor.runname):
        the name, or ``name@variant``."""
        return run_name(self.name, self.variant)


@dataclass(frozen=True, slots=True)
class MissingSecret:
    """A secret an auth provider reads that is not there. Not a load error: the daemon
    starts, and the probes using that provider report config_error; ``check`` refuses it."""

    key: str  # e.g. auth.staging_jwt.secret_env
    line: int | None
    message: str  # e.g. secret environment variable JWT_SECRET_STAGING is not set
    text: str  # file:line: key: message


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    probes: tuple[Probe, ...]
    label_names: tuple[str, ...]  # the union of static label names, for metric label sets
    warnings: tuple[str, ...] = ()  # each file:line: key: message
    missing_secrets: tuple[MissingSecret, ...] = ()  # each said once, at its provider
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)  # see module doc
    files: tuple[str, ...] = ()  # every file read, in order (``path`` may be a directory)

    def probe(self, name: str) -> Probe:
        for p in self.probes:
            if p.name == name:
                return p
        raise KeyError(name)
