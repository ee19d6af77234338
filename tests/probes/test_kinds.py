"""The probe-kind seam: every kind registered in one place, and nothing outside its own
package (and schema module) asking which kind a probe is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monitor.config import PROBE_KINDS, KindSpec, ProbeSpec
from monitor.config.schema.probe import KIND_MODELS, one_kind_problem
from monitor.probes.kind import Gauge, PhaseGauge, ProbeKind
from monitor.probes.kinds import KINDS, kind_of
from monitor.probes.run import RUNNERS

MONITOR = Path(__file__).resolve().parents[2] / "monitor"


def test_every_kind_of_the_schema_has_its_package() -> None:
    assert tuple(KINDS) == PROBE_KINDS
    for key, kind in KINDS.items():
        assert isinstance(kind, ProbeKind) and kind.name == key
        assert issubclass(KIND_MODELS[key], KindSpec)
        assert RUNNERS[key] is kind.runner
        assert kind.phases and len(set(kind.phases)) == len(kind.phases)
    assert kind_of("no-such-kind") is None


def test_a_shared_metric_family_is_declared_alike() -> None:
    """Two kinds may export one family (an HTTP status), with one help text and shape."""
    seen: dict[str, Gauge | PhaseGauge] = {}
    for kind in KINDS.values():
        for gauge in kind.gauges:
            first = seen.setdefault(gauge.name, gauge)
            assert type(first) is type(gauge) and first.doc == gauge.doc, gauge.name
            assert gauge.name.startswith("probe_")


def test_the_json_schema_and_the_check_know_every_kind() -> None:
    assert ProbeSpec.model_json_schema()["oneOf"] == [{"required": [k]} for k in PROBE_KINDS]
    for key in PROBE_KINDS:
        assert key in (one_kind_problem(set()) or "")
        assert one_kind_problem({key}) is None


def _kind_modules() -> dict[str, set[Path]]:
    """The files that may name kind ``key``: its package and its schema module."""
    return {key: {*(MONITOR / "probes" / key).rglob("*.py"),
                  MONITOR / "config" / "schema" / f"{key}.py"} for key in PROBE_KINDS}


def _branches(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a file compares something with a kind's name, or reads a kind's section of a
    probe (``spec.http``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and side.value in PROBE_KINDS:
                    found.append((node.lineno, f"compares with {side.value!r}"))
                if isinstance(side, ast.Tuple | ast.List | ast.Set) and any(
                        isinstance(e, ast.Constant) and e.value in PROBE_KINDS
                        for e in side.elts):
                    found.append((node.lineno, "compares with a list of kinds"))
        if isinstance(node, ast.Attribute) and node.attr in PROBE_KINDS and isinstance(
                node.value, ast.Attribute) and node.value.attr == "spec":
            found.append((node.lineno, f"reads .spec.{node.attr}"))
    return found


# The simulator is a target, not a part of the monitor: it speaks the protocols itself.
_NOT_THE_MONITOR = MONITOR / "demo" / "simulator"


@pytest.mark.parametrize("path", sorted(p for p in MONITOR.rglob("*.py")
                                        if _NOT_THE_MONITOR not in p.parents),
                         ids=lambda p: str(p.relative_to(MONITOR)))
def test_nothing_outside_a_kind_branches_on_it(path: Path) -> None:
    own = {key for key, files in _kind_modules().items() if path in files}
    if own:
        return  # a kind's own modules know which kind they are
    branches = _branches(ast.parse(path.read_text(encoding="utf-8")))
    assert not branches, f"{path.relative_to(MONITOR)} branches on a probe kind: {branches}"
