"""A built-in imitation of the staging backend (``synthmon demo``, the test suite and the
end-to-end alerting test probe it): :mod:`.protocol` holds what it reads and answers on the
wire, :mod:`.backend` the aiohttp application, its modes and how it is started."""

from monitor.demo.modes import MODES
from monitor.demo.simulator.backend import (
    RunningSimulator,
    StagingSimulator,
    serve_forever,
    start_simulator,
)
from monitor.demo.simulator.protocol import (
    ADMIN_PREFIX,
    ALL_EVENTS,
    ALT_WS_PATH,
    AUDIENCE,
    DEFAULT_SLOW_DELAY,
    EVENT_ALIASES,
    EVENT_GAP_SECONDS,
    EVENTS_WITHOUT_TOOLS,
    ISSUER,
    JWT_AUTH_SUBPROTOCOL,
    MAIN_WS_PATH,
    PLAIN_GET_CHANGED,
    RECEIVED_MAXLEN,
    RETRY_AFTER_429,
    RETRY_AFTER_503,
    SHUTDOWN_TIMEOUT,
    TOKEN_SUBPROTOCOL_PREFIX,
    WS_CLOSE_TIMEOUT,
    Handler,
    encode_token_subprotocol,
)

__all__ = [
    "ADMIN_PREFIX",
    "ALL_EVENTS",
    "ALT_WS_PATH",
    "AUDIENCE",
    "DEFAULT_SLOW_DELAY",
    "EVENTS_WITHOUT_TOOLS",
    "EVENT_ALIASES",
    "EVENT_GAP_SECONDS",
    "ISSUER",
    "JWT_AUTH_SUBPROTOCOL",
    "MAIN_WS_PATH",
    "MODES",
    "PLAIN_GET_CHANGED",
    "RECEIVED_MAXLEN",
    "RETRY_AFTER_429",
    "RETRY_AFTER_503",
    "SHUTDOWN_TIMEOUT",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "WS_CLOSE_TIMEOUT",
    "Handler",
    "RunningSimulator",
    "StagingSimulator",
    "encode_token_subprotocol",
    "serve_forever",
    "start_simulator",
]
