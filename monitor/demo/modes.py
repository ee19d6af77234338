"""The simulator's modes, each a regression of the staging incident (``healthy`` aside):
kept apart from the simulator so that ``synthmon --help`` can list them without importing
aiohttp and PyJWT."""

from __future__ import annotations

MODES: tuple[str, ...] = (
    "healthy",
    "ws_route_missing",
    "upgrade_json",
    "auth_rejected_before_accept",
    "close_1008",
    "close_1011",
    "strict_subprotocol",
    "subprotocol_mismatch",
    "events_missing",
    "auth_not_enforced",
    "slow",
)
