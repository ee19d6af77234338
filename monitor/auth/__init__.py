"""Credentials a run sends: :mod:`~monitor.auth.tokens` makes the valid ones (JWTs minted
locally, tokens fetched from an endpoint, cached until shortly before expiry) and
:mod:`~monitor.auth.variants` derives from them each way a backend is known to fail open,
for negative probes."""

from monitor.auth.tokens import (
    REFRESH_FRACTION,
    AuthError,
    TokenSource,
    jwt_key,
    mint_jwt,
    read_secret,
)

__all__ = ["REFRESH_FRACTION", "AuthError", "TokenSource", "jwt_key", "mint_jwt",
           "read_secret"]
