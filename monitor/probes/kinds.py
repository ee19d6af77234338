"""The registry of probe kinds: the key of each (a field of
:class:`~monitor.config.schema.probe.ProbeSpec`, where a kind is registered) to the
:class:`~monitor.probes.kind.ProbeKind` its package ``monitor/probes/<key>/`` exports as
``KIND``. Adding a kind is its schema module, its package and that one line; the runner
dispatch, the metrics, the spans, the status page and the incidents find it here.
"""

from __future__ import annotations

from importlib import import_module

from monitor.config import PROBE_KINDS
from monitor.probes.kind import ProbeKind


def _load(key: str) -> ProbeKind:
    kind = getattr(import_module(f"monitor.probes.{key}"), "KIND", None)
    if not isinstance(kind, ProbeKind) or kind.name != key:
        raise ImportError(f"monitor.probes.{key} must export KIND, the ProbeKind named {key!r}")
    return kind


KINDS: dict[str, ProbeKind] = {key: _load(key) for key in PROBE_KINDS}


def kind_of(name: str) -> ProbeKind | None:
    """The kind of that name, or None (a result of a kind no longer configured)."""
    return KINDS.get(name)


__all__ = ["KINDS", "kind_of"]
