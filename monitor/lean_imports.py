"""structlog imported without rich: the one hook into how a library is imported.

``import structlog`` imports ``structlog.dev`` and ``structlog.tracebacks``, which import
rich (and pygments through it) whenever it is installed, for their pretty tracebacks: 3.3 MiB
of RSS in every daemon (issue 24), which never renders with rich. synthmon's console
renderer is handed every exception already as text (``format_exc_info`` comes before it in
monitor.sinks.log), so rich's traceback formatter is never called and the output is the
same either way (tests/test_lean_imports.py renders both and compares). ``once`` still
imports rich for its table, as it did.

This module is imported by ``monitor/__init__.py``, before any module of synthmon imports
structlog. If structlog was imported before (a host program, a test), nothing changes. If a
structlog release needs rich to import at all, structlog is imported again with it: the
saving is lost, not the daemon (the test says so).
"""

from __future__ import annotations

import sys


def import_structlog_without_rich() -> None:
    if "structlog" in sys.modules:
        return
    had, saved = "rich" in sys.modules, sys.modules.get("rich")
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError
    try:
        import structlog
    except ImportError:
        for name in [m for m in sys.modules if m == "structlog" or m.startswith("structlog.")]:
            del sys.modules[name]
    finally:
        if had:
            sys.modules["rich"] = saved  # type: ignore[assignment]
        else:
            del sys.modules["rich"]
    import structlog  # noqa: F401  # at worst, as it imports itself
