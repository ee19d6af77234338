"""``synthmon check``: validate a probes file, exit 1 on any problem."""

from __future__ import annotations

import sys

from monitor.config import ConfigError, ConfigPaths, config_name, load_files

NO_PROBES = "no probes defined: the file is empty, truncated, or its probes list is empty"


def cmd_check(paths: ConfigPaths) -> int:
    # A missing secret does not stop the daemon (that probe reports config_error), but a
    # pre-deploy check must not call such a file good: here it is an error like the others.
    try:
        config = load_files(paths, require_secrets=True)
    except ConfigError as exc:
        print(f"{config_name(paths)}: {len(exc.problems)} error(s)", file=sys.stderr)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    path = config_name(paths)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not config.probes:
        # A deploy gate must not pass on a truncated file.
        print(f"{path}: error: {NO_PROBES}", file=sys.stderr)
        return 1
    files = f" ({len(config.files)} files)" if len(config.files) > 1 else ""
    print(f"{path}{files}: {len(config.probes)} probes OK")
    return 0
