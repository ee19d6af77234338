"""synthmon: synthetic HTTP and WebSocket probes exported to Prometheus."""

__version__ = "0.1.0"
