"""The embedded default: a staging look-alike (:mod:`~monitor.demo.simulator`, healthy, with
a switch into each regression synthmon exists to catch) and ``synthmon demo``
(:mod:`~monitor.demo.run`), the daemon probing it with the shipped probes.yaml."""

from monitor.demo.run import REGRESSIONS, banner, demo_env, run_demo

__all__ = ["REGRESSIONS", "banner", "demo_env", "run_demo"]
