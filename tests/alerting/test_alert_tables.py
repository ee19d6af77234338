"""The alert tables of README.md and deploy/README.md are generated from alerts.yml
(scripts/gen_alert_tables.py): every alert, its severity and its `for:` as the rules say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .support import ALERTS, ROOT, alert_rules

READMES = (ROOT / "README.md", ROOT / "deploy" / "README.md")


def test_the_tables_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_alert_tables.py"),
                           "--check"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_every_alert_is_a_row_with_its_severity_and_for() -> None:
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        table = text.split("<!-- alerts:start -->", 1)[1].split("<!-- alerts:end -->", 1)[0]
        rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
            r"^\| \[`(\w+)`\]\([^)]*\) \| ([^|]+) \| ([^|]+) \|", table, re.M)}
        assert set(rows) == {r["alert"] for r in alert_rules()}, readme
        for rule in alert_rules():
            severity, wait = rows[rule["alert"]]
            assert severity.split()[0] == rule["labels"]["severity"]
            assert wait.strip() == str(rule.get("for", "0s"))


def test_an_alert_without_its_meaning_is_refused(tmp_path: Path) -> None:
    """A new alert cannot be left out of the tables: the generator refuses it."""
    means = "        # means: Prometheus cannot scrape synthmon\n"
    text = ALERTS.read_text(encoding="utf-8")
    assert means in text
    text = text.replace(means, "")
    broken = tmp_path / "alerts.yml"
    broken.write_text(text, encoding="utf-8")
    code = ("import sys; sys.path.insert(0, 'scripts'); import gen_alert_tables as g; "
            f"g.rows(__import__('pathlib').Path({str(broken)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert done.returncode != 0 and "SynthmonMonitorDown" in done.stderr, done.stderr
