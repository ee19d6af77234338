"""The embedded default: a staging look-alike (:mod:`~monitor.demo.simulator`, healthy, with
a switch into each regression synthmon exists to catch) and ``synthmon demo``
(:mod:`~monitor.demo.run`), the daemon probing it with the shipped probes.yaml."""

from typing import Any

__all__ = ["REGRESSIONS", "banner", "demo_env", "run_demo"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `synthmon --help` lists the modes (monitor.demo.modes) without
    # loading the simulator's aiohttp and PyJWT.
    if name in __all__:
        from monitor.demo import run

        return getattr(run, name)
    raise AttributeError(name)
