"""The order in which `make test` hands test files to its workers: longest first.

`make test` gives each pytest-xdist worker a whole file at a time (``--dist loadfile``), as a
worker asks for one, in the order the files were collected (``--no-loadscope-reorder``; xdist's
own order, most tests first, put the long files with few tests last, so one of them often
ran alone at the end while the other workers had nothing left). Longest first, the last files
handed out are short, and the workers finish together: the wall time is the suite's work
divided by the workers, not the longest file started late.

Nothing here changes what a test does or asserts, only when its file starts. A file missing
from :data:`SECONDS` counts as short; an entry naming a file that no longer exists fails
tests/test_schedule.py, so a rename cannot drop a long file silently to the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

# How long each file that takes 15 s or more ran in `make test` on the 2-core machine, 3
# workers, beside other work (the median of five runs at load 5 to 10; seconds, refresh
# with `--durations`: only the order matters).
SECONDS: dict[str, float] = {
    "tests/alerting/test_e2e.py": 208,
    "tests/web/test_every_mode.py": 161,
    "tests/test_bench_smoke.py": 158,
    "tests/demo/test_tour.py": 153,
    "tests/alerting/test_fleet.py": 139,
    "tests/cli/test_once_table.py": 85,
    "tests/config/test_fuzz.py": 82,
    "tests/cli/test_once_flow.py": 78,
    "tests/test_daemon.py": 66,
    "tests/cli/test_once_negative_http.py": 65,
    "tests/web/test_statuspage_screens.py": 54,
    "tests/alerting/test_every_outcome_pages_once.py": 48,
    "tests/cli/test_once.py": 47,
    "tests/probes/test_faults.py": 46,
    "tests/test_floods.py": 39,
    "tests/alerting/test_rules.py": 38,
    "tests/cli/test_once_websocket_issue12.py": 35,
    "tests/web/test_incident_evidence.py": 34,
    "tests/probes/sse/test_run.py": 32,
    "tests/config/test_all_problems.py": 31,
    "tests/test_scheduler_engine.py": 30,
    "tests/test_shutdown.py": 29,
    "tests/test_secrets.py": 29,
    "tests/test_soak.py": 28,
    "tests/web/test_webconfig.py": 27,
    "tests/web/test_render_any_history.py": 27,
    "tests/test_scheduler.py": 24,
    "tests/alerting/test_alertmanager_config.py": 24,
    "tests/cli/test_run_names.py": 23,
    "tests/web/test_password_flood.py": 23,
    "tests/web/test_browser.py": 22,
    "tests/cli/test_paths.py": 20,
    "tests/sinks/test_history.py": 20,
    "tests/demo/test_simulator_cli.py": 19,
    "tests/test_memory.py": 17,
    "tests/config/test_schema_docs.py": 17,
    "tests/alerting/test_deploy_files.py": 16,
    "tests/cli/test_once_escapes.py": 16,
}


class Item(Protocol):
    @property
    def nodeid(self) -> str: ...


T = TypeVar("T", bound=Item)


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_first(items: Sequence[T]) -> list[T]:
    """``items`` with their files in order: those of :data:`SECONDS`, longest first, then
    the others, most tests first (xdist's own guess); each file's tests in their order."""
    count: dict[str, int] = {}
    for item in items:
        count[file_of(item.nodeid)] = count.get(file_of(item.nodeid), 0) + 1
    rank = {name: i for i, name in enumerate(
        sorted(count, key=lambda f: (-SECONDS.get(f, 0.0), -count[f])))}
    return sorted(items, key=lambda item: rank[file_of(item.nodeid)])
