"""synthmon: synthetic HTTP and WebSocket probes exported to Prometheus."""

from monitor.lean_imports import import_aiohttp_with_deferred_certs, import_structlog_without_rich

__version__ = "0.1.0"

import_structlog_without_rich()
import_aiohttp_with_deferred_certs()
