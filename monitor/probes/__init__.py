"""Probes: pure async functions, a :class:`~monitor.config.Probe` in, a
:class:`~monitor.result.Result` out. They never raise and never touch metrics or logs."""
