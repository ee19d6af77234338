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
    # Fail-open auth, one per way in (issue 12).
    "auth_demo_mode",
    "auth_emergency_bypass",
    "auth_test_headers",
    "auth_lax_validation",
    "auth_query_token",
    # A reflected credential.
    "token_echo",
    # Every refusal and close told apart.
    "upgrade_405",
    "not_ready_503",
    "rate_limited_429",
    "close_without_answer",
    "close_1003",
    "close_1000_before_welcome",
    "close_1013",
    "drop_after_accept",
    # Event envelopes drifting, and agents that die or crawl.
    "events_wrapped",
    "events_aliased",
    "events_duplicated",
    "agent_dies",
    "agent_slow",
    # Streams (Server-Sent Events) that stop streaming.
    "stream_json",
    "stream_silent",
    "stream_gap",
    "stream_cut",
    "stream_malformed",
    "stream_buffered",
    # The end-to-end suite's REST steps and its conversation on a thread (issue 23).
    "login_refused",
    "token_in_header",
    "login_echoes_password",
    "thread_create_fails",
    "thread_create_200",
    "events_never_complete",
    "thread_delete_fails",
)
