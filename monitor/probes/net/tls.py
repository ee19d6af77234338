"""The moment a TLS handshake starts, noted from inside :class:`ssl.SSLContext`.

aiohttp reports one event for "connection created", which covers TCP connect and TLS
handshake together. asyncio and uvloop wrap the already connected socket in an
:class:`ssl.SSLObject` (``SSLContext.wrap_bio``) immediately before they start the
handshake, so a context that notes that call splits the two. The note goes to the run's
watcher (:mod:`monitor.probes.net.watch`): one cached context serves every run.
"""

from __future__ import annotations

import ssl

from monitor.probes.net.watch import WATCHER


class TimedContext(ssl.SSLContext):
    """An SSL context that tells the run's watcher when a handshake begins."""

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        obj = super().wrap_bio(incoming, outgoing, server_side=server_side,
                               server_hostname=server_hostname, session=session)
        watcher = WATCHER.get()
        if watcher is not None:
            watcher.tls_handshake_started(obj)
        return obj


__all__ = ["TimedContext"]
