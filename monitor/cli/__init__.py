"""The commands of ``synthmon``: one module each (``run``, ``check``, ``once``,
``simulator``; ``demo`` lives with the simulator in :mod:`monitor.demo`), and
:mod:`~monitor.cli.main`, the parser that dispatches to them."""

from monitor.cli.main import main

__all__ = ["main"]
