"""What every probe kind's spec model is (``http:``, ``websocket:``, ...): the section of a
probe that says what to run, and what the rest of the config asks of it without knowing
which kind it is.

A kind is registered by one line in :class:`~monitor.config.schema.probe.ProbeSpec` (its key
and this model); everything else about it (runner, phases, metrics, spans, wording) is in
its package, ``monitor/probes/<key>/`` (see :mod:`monitor.probes.kinds`). Nothing outside
those two places branches on a kind: the config asks the model, the rest asks the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from monitor.config.schema.base import Model

# A problem within a kind's section: the path below the section, and the message.
Relative = tuple[tuple[str | int, ...], str]


class KindSpec(Model):
    """The base of every kind's spec model. Subclasses are pydantic models with their own
    fields; the methods below have defaults for a kind that needs nothing of them."""

    # The keys :meth:`key_problems` reads: the whole-file checks validate each alone when
    # the section as a whole does not validate (monitor.config.facts).
    CHECKED_KEYS: ClassVar[tuple[str, ...]] = ()
    # Whether the kind can be a step of a flow (monitor.config.schema.flow).
    IN_FLOW: ClassVar[bool] = True
    # Where a flow step of this kind may use ${steps.STEP.NAME}, as patterns of paths in
    # the section (monitor.config.references): a key, * any one key, ** anything below.
    REFERENCE_PLACES: ClassVar[tuple[str, ...]] = ()

    @property
    def target_url(self) -> str:
        """The URL the ``target`` label is made of (credentials and query are dropped)."""
        url = getattr(self, "url", None)
        assert isinstance(url, str), f"{type(self).__name__} must define url or target_url"
        return url

    @property
    def asked_urls(self) -> tuple[str, ...]:
        """Every URL a run asks, in order (a flow's steps'): the hosts whose round of
        probes it may follow (monitor.scheduler.rounds)."""
        return (self.target_url,)

    @property
    def step_kinds(self) -> tuple[str, ...]:
        """The kinds a run uses besides its own (a flow's steps'): monitor.preload loads
        what their runners need before the first run."""
        return ()

    @property
    def auth_ref(self) -> Any:
        """The probe's auth: a provider's name, an inline provider, or None."""
        return getattr(self, "auth", None)

    @property
    def request_method(self) -> str:
        """The HTTP method of the run's (first) request, for its span."""
        method = getattr(self, "method", "GET")
        return method if isinstance(method, str) else "GET"

    @property
    def run_timeout(self) -> float | None:
        """A bound the section sets on a run of its own (a stream's ``timeout``), which the
        probe's timeout must leave room for; None: the probe's timeout alone."""
        return None

    @property
    def auth_path(self) -> tuple[str | int, ...]:
        """Where :attr:`auth_ref` is written in the section, for a problem with it."""
        return ("auth",)

    def overrun(self, timeout: float) -> float:
        """How long a run may go on after the probe's ``timeout`` (a flow's cleanup steps,
        each with a bound of its own): part of every bound a run is checked against."""
        return 0.0

    @classmethod
    def section_data(cls, raw: Any) -> dict[str, Any] | None:
        """The section as the mapping its model reads, from what was written (None: not one
        this kind can read); a kind written as a list wraps it."""
        return raw if isinstance(raw, dict) else None

    @classmethod
    def probe_key_problem(cls, key: str) -> str | None:
        """Why a probe of this kind has no ``key`` beside its section (None: just unknown)."""
        return None

    @classmethod
    def bind_kinds(cls, kinds: Mapping[str, type[KindSpec]]) -> None:
        """Told every registered kind once they are registered (a flow builds its step
        model of them)."""

    def event_keys(self) -> set[tuple[str, str]]:
        """Every (step, event) pair whose timing a run of this spec may report: the label
        values of ``synthmon_probe_event_seconds``, bounded by the config."""
        return set()

    @classmethod
    def key_problems(cls, get: Callable[[str], Any], *, has_auth: bool | None
                     ) -> list[Relative]:
        """What this section cannot do given the rest of the file: ``get(key)`` is the
        value of one of :attr:`CHECKED_KEYS` (None when it did not validate), ``has_auth``
        whether the probe names or carries an auth provider (None: unknown)."""
        return []

    def problems(self, *, has_auth: bool | None) -> list[Relative]:
        """:meth:`key_problems` of this (valid) section."""
        return self.key_problems(lambda key: getattr(self, key, None), has_auth=has_auth)

    def warnings(self) -> list[Relative]:
        """Keys that are accepted but have no effect here."""
        return []

    @classmethod
    def shape_problems(cls, data: dict[str, Any]) -> list[Relative]:
        """The section's "exactly one of" rules on the plain data, for a section whose
        own validators did not run because a field of it is invalid (see
        :func:`monitor.config.checks.shape_problems`)."""
        return []


__all__ = ["KindSpec", "Relative"]
