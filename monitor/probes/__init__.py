"""Probes: pure async functions, a :class:`~monitor.config.Probe` in, a
:class:`~monitor.result.Result` out. They never raise and never touch metrics or logs.

- a *kind* is one package, ``monitor/probes/<key>/`` (:mod:`.http`, :mod:`.websocket`),
  exporting its :class:`~.kind.ProbeKind` (runner, phases, metric families, span attributes,
  wording); :mod:`.kinds` is the registry every other part reads, keyed by the kinds the
  schema declares (:class:`~monitor.config.ProbeSpec`);
- :mod:`.run`: dispatch to the kind's runner and the hard deadline around every run;
- :mod:`.record`: the one builder of a run's Result (header fields, trace ids, variant,
  redaction, the reflection check), for every kind;
- :mod:`.context`: :func:`~.context.open_context`, what every run shares (session, tokens,
  redactor), built the same way by the daemon, ``once``, the tests and the benchmarks;
- shared by the kinds: :mod:`.request` (an HTTP request from a spec), :mod:`.events` (the
  event matcher, pure), :mod:`.errors` (network failures → outcomes), :mod:`.jsonmatch`
  (JSON expectations), :mod:`.tls` (client contexts, certificate expiry), :mod:`.refusal`
  and :mod:`.reflection` (a negative probe's answers, a credential in an answer),
  :mod:`.transcript` (the bounded transcript);
- :mod:`.net`: every hook into aiohttp, websockets and ssl internals.
"""
