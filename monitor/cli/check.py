"""``synthmon check``: validate a probes file, exit 1 on any problem."""

from __future__ import annotations

import sys

from monitor.config import ConfigError, load_file


def cmd_check(path: str) -> int:
    try:
        config = load_file(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} error(s)", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    # A missing secret does not stop the daemon (that probe reports config_error), but a
    # pre-deploy check must not call such a file good.
    for warning in config.warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    missing = [w for w in config.warnings if "is not set" in w or "does not exist" in w]
    print(f"{path}: {len(config.probes)} probes OK" if not missing
          else f"{path}: {len(missing)} secret(s) missing")
    return 1 if missing else 0
