"""Does an answer's header carry the credential the probe sent? (outcome ``token_reflected``)

A token in a response header is kept by every proxy and access log on the way: the
incident's "fix" for a subprotocol mismatch echoed the client's whole ``jwt.<token>`` offer
back as the chosen subprotocol. The token is looked for raw, base64 and base64url (padded
or not), which covers the ``jwt.`` form. Only the header's *name* is ever reported.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.redact import spellings

# Shorter "tokens" would match ordinary header values by chance.
MIN_TOKEN_LEN = 8


def token_forms(token: str) -> tuple[str, ...]:
    """Every spelling of ``token`` a server could echo, longest first."""
    return tuple(sorted(spellings(token), key=len, reverse=True))


def reflected_in(headers: Iterable[tuple[str, str]], token: str | None) -> str | None:
    """The name of the first header whose value carries ``token`` in any form, or None."""
    if token is None or len(token) < MIN_TOKEN_LEN:
        return None
    forms = token_forms(token)
    for name, value in headers:
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
