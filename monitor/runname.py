"""The one spelling of a run's name: ``NAME`` for a probe, ``NAME@VARIANT`` for one variant
of a negative probe (``ws-fails-closed@no_token``).

Every output that names a run spells it with :func:`run_name`: the status page (its rows,
incident cards and ``/probe/NAME@VARIANT`` URLs), ``/api/v1/results`` (``probe`` of every
record, the incidents' ``probes``), ``synthmon once`` (table, JSON, JUnit testcases, the
``--probe`` error), the log's ``probe`` field and the spans; the history, the scheduler and
the metrics sink key a run's state by it. ``--probe`` reads it back with :func:`split`.
``@`` is not allowed in probe names (config schema), so the spelling is unambiguous.

Prometheus labels alone keep the two parts apart (``probe`` and ``variant``): a label is a
dimension to aggregate by, and the metric names are a contract (PRODUCT.md).
"""

from __future__ import annotations

SEPARATOR = "@"


def run_name(probe: str, variant: str | None = None) -> str:
    """``probe``, or ``probe@variant``."""
    return probe if variant is None else f"{probe}{SEPARATOR}{variant}"


def split(name: str) -> tuple[str, str | None]:
    """``NAME@VARIANT`` -> (NAME, VARIANT); a plain name -> (NAME, None)."""
    probe, sep, variant = name.partition(SEPARATOR)
    return (probe, variant) if sep else (probe, None)
