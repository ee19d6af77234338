"""Every flag is documented: help text in `--help`, and a row in the README's CLI section."""

from __future__ import annotations

import argparse
import subprocess
import sys

from monitor.cli.main import build_parser
from monitor.demo.modes import MODES
from tests.support.servers import ROOT


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)]


def test_every_argument_has_help_text() -> None:
    missing = [f"{name} {'/'.join(a.option_strings)}" for name, parser in _commands().items()
               for a in _flags(parser) if not (a.help or "").strip()]
    assert missing == []
    assert set(_commands()) == {"run", "check", "once", "demo", "simulator", "schema"}


def test_every_flag_is_in_the_readme_cli_section() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## CLI\n", 1)[1].split("\n## ", 1)[0]
    for name, parser in _commands().items():
        assert f"`synthmon {name}`" in section, name
        for action in _flags(parser):
            assert any(f"`{flag}" in section for flag in action.option_strings), \
                (name, action.option_strings)


def test_mode_help_lists_the_modes() -> None:
    for command in ("demo", "simulator"):
        out = subprocess.run([sys.executable, "-m", "monitor", command, "--help"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin", "COLUMNS": "400"})
        assert out.returncode == 0
        assert "one of: " + ", ".join(MODES) in out.stdout, out.stdout
    bad = subprocess.run([sys.executable, "-m", "monitor", "simulator", "--mode", "sideways"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "invalid choice: 'sideways'" in bad.stderr
