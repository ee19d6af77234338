"""Every place synthmon reaches into aiohttp, websockets or ssl beyond their public API,
and the phase names the timers measure. An upgrade of one of those libraries is checked
here first; ``tests/probes/net/test_hooks.py`` fails, naming the hook, when one is gone.
pyproject.toml caps aiohttp and websockets at the majors these hooks were written for.

=================================================  ==========================================
hook (module)                                      why
=================================================  ==========================================
aiohttp ``TCPConnector._factory``                  no public switch for the protocol class; it
(:mod:`.session`)                                  must be :class:`WatchedResponseHandler`
aiohttp ``ResponseHandler.set_exception``          keeps why an answer was not HTTP (a server
(:mod:`.session`)                                  that talks first), which uvloop's ordering
                                                   makes aiohttp drop
aiohttp ``DummyCookieJar`` subclass, the           aiohttp keeps the cookies of followed
session's jar (``update_cookies``,                 redirects only in the session's jar; the
``update_cookies_from_headers``,                   one shared session hands each run a jar of
``filter_cookies``; :mod:`.cookies`)               its own through a contextvar
aiohttp ``ClientSession._retry_connection``        aiohttp silently repeats an idempotent
(:mod:`.session`)                                  request after a reset; a monitor must
                                                   report the first failure
aiohttp ``BaseConnector.connect``, the             the request's phases (connect, resolve,
resolver's ``resolve``, ``ClientResponse.start``   processing, a followed redirect) timed
(``response_class``; :mod:`.session`)              for the run's PhaseTimer: aiohttp's
                                                   trace hooks time the same moments at
                                                   ten times the cost (every signal sent,
                                                   a parameters object each)
aiohttp ``ResponseHandler.feed_data``, the         the moments an answer's headers and its
payload's ``on_eof`` (:mod:`.session`)             body's last byte are read off the socket,
                                                   where the run's I/O ends: the run's task
                                                   learns of them only at its next turn on
                                                   the loop, behind other runs' callbacks
websockets ``ClientConnection`` subclass           passed as ``create_connection``: notes when
(``connection_made``, ``data_received``;           TCP/TLS came up, keeps the raw start of the
:mod:`.wsconn`)                                    answer, feeds data in slices, aborts a
                                                   connection whose verdict is already known
websockets ``Protocol.parser_exc`` /               read after each slice: a refused frame or an
``handshake_exc`` (:mod:`.wsconn`)                 unreadable answer ends the wait at once
websockets ``Protocol.close_rcvd`` /               a finished close handshake closes TCP from
``close_sent`` (:mod:`.wsconn`)                    this side (RFC 6455 7.1.1 allows it): a
                                                   server that never does held the run to its
                                                   timeout with its close frame unread
websockets ``Connection.process_event``            counts pings to catch a ping flood
(:mod:`.wsconn`)
websockets ``Assembler.paused`` / ``.resume``      the receive queue's flow control: the rest
(``connection.recv_messages``; :mod:`.wsconn`)     of a read is held while the queue is full
                                                   and fed as it drains, so that a flood is not
                                                   parsed a whole read (thousands of frames) at
                                                   a time while every other probe waits
websockets ``connect.process_redirect``            a redirected upgrade is a finding, not a
(:mod:`.wsconn`)                                   detour to follow
``ssl.SSLContext.wrap_bio`` (:mod:`.tls`)          the moment the TLS handshake starts, which
                                                   splits ``connect`` from ``tls``
``ssl.SSLContext.load_default_certs`` and          aiohttp's two default client contexts load
``set_default_verify_paths`` while aiohttp is      the CA certificates at their first
imported (:mod:`monitor.lean_imports`, with the    handshake, not at import (~2.5 MiB the
other import hook)                                 daemon never uses)
``socket.socket``'s ``family`` and ``type``        uvloop reads them four times a connect,
(``_socket.socket``'s numbers; :mod:`.sockets`,    each an enum made in Python; the session's
through aiohttp's ``socket_factory``)              sockets answer the same members for less
the watcher contextvar (:mod:`.watch`)             how the shared session and SSL context find
                                                   the run in progress and its timer (the
                                                   cookie jar's run is found alike)
=================================================  ==========================================

:mod:`.phases` holds the phase names (``HTTP_PHASES``, ``WS_PHASES``), which the kinds
declare as their ``phase`` label values, and the HTTP :class:`~.phases.PhaseTimer` the
session's hooks drive.

The one hook outside this package is the OTLP sink's, into OpenTelemetry's exporter (its
HTTP client sends the bytes the sink encodes): :mod:`monitor.sinks.otlp_wire`, which says
why, with its test in ``tests/sinks/test_otlp_wire.py``.

Nothing here is imported by this ``__init__``: :mod:`monitor.probes.tls` and the hooks
import each other's modules, and an eager import would make that a cycle.
"""
