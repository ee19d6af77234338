"""Issue 21's bound, asserted from the shipped files: every page about a target's regression
reaches PagerDuty within 120 s of the onset, worst case, with one Prometheus
(deploy/prometheus/prometheus.yml) and in the fleet (deploy/prometheus/fleet/), and the
README's hop-by-hop tables are what those files say (scripts/gen_alert_budget.py).

The end-to-end tests measure the same path time-compressed (test_e2e.py, test_fleet.py);
these add up its worst case, which a measurement only meets by chance."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .support import ALERTS, FLEET_CENTRAL, ROOT, alert_rules, load_yaml, parse_duration

SCRIPT = ROOT / "scripts" / "gen_alert_budget.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_alert_budget", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


budget = _load()


def _target_pages() -> set[str]:
    (group,) = [g for g in load_yaml(ALERTS)["groups"] if g["name"] == budget.TARGET_PAGES]
    return {r["alert"] for r in group["rules"]}


def test_every_page_about_a_target_is_within_two_minutes_of_the_onset() -> None:
    bounds = budget.pages()
    for setup in ("one Prometheus", "fleet"):
        mine = {b.page: b for b in bounds if b.setup == setup}
        assert set(mine) == _target_pages(), setup  # every page, none left out
        late = {p: (b.probe, b.worst) for p, b in mine.items() if b.worst > budget.BOUND}
        assert late == {}, f"{setup}: worst case from the onset over 120 s"


def test_the_fleets_own_pages_are_within_two_minutes() -> None:
    pages = budget.fleet_pages()
    assert set(pages) == {"SynthmonShardDown", "SynthmonLocationSilent"}
    for page, (worst, hung) in pages.items():
        assert worst < hung <= budget.BOUND, page


def test_every_resolve_is_within_two_minutes_of_the_healing() -> None:
    probes, route = budget.shipped_probes(), budget.page_route()
    for polling in (budget.single_polling(), budget.fleet_polling()):
        for probe in probes.values():
            hops = budget.resolve_hops(probe, polling, route)
            assert budget.total(hops, lambda h: h.worst) <= budget.BOUND


def test_every_page_of_the_group_says_which_probes_it_is_about() -> None:
    """A new page about a target cannot be left out of the bound."""
    assert set(budget.PAGE_TYPES) == _target_pages()


def test_the_budget_reads_the_shipped_files() -> None:
    """The inputs are the files' values, not numbers of the script's own."""
    central = load_yaml(FLEET_CENTRAL)["global"]
    fleet = budget.fleet_polling()
    assert fleet.federation == parse_duration(central["scrape_interval"])
    assert fleet.evaluation == parse_duration(central["evaluation_interval"])
    single = budget.single_polling()
    prom = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")["global"]
    assert single.evaluation == parse_duration(prom["evaluation_interval"])
    waits = budget.page_waits(ALERTS, budget.TARGET_PAGES)
    assert waits == {r["alert"]: parse_duration(r.get("for", "0s")) for r in alert_rules()
                     if r["alert"] in _target_pages()}
    probes = budget.shipped_probes()
    assert {p.type for p in probes.values()} == {"http", "websocket", "sse", "flow"}
    assert any(p.overrun > 0 for p in probes.values())  # the flow's cleanup counted


def test_the_central_prometheus_at_the_locations_pace_would_break_the_bound(
        tmp_path: Path) -> None:
    """Why central.yml federates and evaluates every 5 s: at 10 s, as before, a hung
    target's page could take 123 s from the onset (127 s for the flow)."""
    doc = load_yaml(FLEET_CENTRAL)
    doc["global"].update(scrape_interval="10s", scrape_timeout="8s", evaluation_interval="10s")
    slow = tmp_path / "central.yml"
    slow.write_text(yaml.safe_dump(doc), encoding="utf-8")
    probes, route = budget.shipped_probes(), budget.page_route()
    polling = budget.fleet_polling(central=slow)
    plain = probes["ws-golden-path"]
    hops = budget.trigger_hops(plain, polling, route)
    assert budget.total(hops, lambda h: h.worst) == 103
    assert budget.total(hops, lambda h: h.hung) == 123
    flow = budget.trigger_hops(probes["e2e-chat"], polling, route, flow=True)
    assert budget.total(flow, lambda h: h.hung) == 127


@pytest.mark.parametrize(("wait", "expected"), [(0, 113), (30, 143), (60, 173)])
def test_a_pages_for_is_a_hop(wait: float, expected: float) -> None:
    """`for:` adds its length, rounded up to the evaluation interval: why the pages about
    a target have none (their retry and quorum confirm the failure)."""
    hops = budget.trigger_hops(budget.shipped_probes()["ws-golden-path"],
                               budget.single_polling(), budget.page_route(), wait)
    assert budget.total(hops, lambda h: h.hung) == expected


def test_the_readme_tables_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
