"""Does an answer's header carry the credential the probe sent? (outcome ``token_reflected``)

A token in a response header is kept by every proxy and access log on the way: the
incident's "fix" for a subprotocol mismatch echoed the client's whole ``jwt.<token>`` offer
back as the chosen subprotocol. The token is looked for raw, base64 and base64url (padded
or not), which covers the ``jwt.`` form. Only the header's *name* is ever reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from monitor.redact import spellings

# Shorter "tokens" would match ordinary header values by chance.
MIN_TOKEN_LEN = 8


# A provider's token is sent run after run until it is re-minted, and every WebSocket run
# looks for it twice (the 101's headers, then the result's): its five spellings were made
# each time, a third of the check. The tokens remembered are ones the redactor and the
# token cache hold anyway.
@lru_cache(maxsize=64)
def token_forms(token: str) -> tuple[str, ...]:
    """Every spelling of ``token`` a server could echo, longest first."""
    return tuple(sorted(spellings(token), key=len, reverse=True))


def reflected_in(headers: Iterable[tuple[str, str]], token: str | None) -> str | None:
    """The name of the first header whose value carries ``token`` in any form, or None."""
    if token is None or len(token) < MIN_TOKEN_LEN:
        return None
    items = headers if isinstance(headers, tuple | list) else tuple(headers)
    if not items:
        return None
    forms = token_forms(token)
    # Nearly always none of them carries it: the values searched together first (a form
    # found only across two values sends the search on to the exact one below).
    joined = "\n".join([value for _, value in items])
    if not any(form in joined for form in forms):
        return None
    for name, value in items:
        if any(form in value for form in forms):
            return name
    return None


def reflected_detail(header: str) -> str:
    what = ("the chosen subprotocol echoes the token offer (jwt.<token>)"
            if header.lower() == "sec-websocket-protocol" else
            f"the answer's {header} header carries the token")
    return (f"{what}: the credential leaks into every proxy and log on the way "
            "(the value is not shown)")


__all__ = ["reflected_detail", "reflected_in", "token_forms"]
