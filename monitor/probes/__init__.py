"""Probes: pure async functions, a :class:`~monitor.config.Probe` in, a
:class:`~monitor.result.Result` out. They never raise and never touch metrics or logs.

- :mod:`.run`: dispatch by protocol and the hard deadline around every run;
- :mod:`.context`: :func:`~.context.open_context`, what every run shares (session, tokens,
  redactor), built the same way by the daemon, ``once``, the tests and the benchmarks;
- :mod:`.http` and :mod:`.websocket` (a package: verdicts, adapter, state, run, steps):
  the two protocols;
- :mod:`.errors` (network failures → outcomes), :mod:`.jsonmatch` (JSON expectations),
  :mod:`.tls` (client contexts, certificate expiry): shared by both;
- :mod:`.net`: every hook into aiohttp, websockets and ssl internals, and the phase names.
"""
