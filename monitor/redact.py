"""Keep secrets out of everything synthmon prints, exports or serves.

A :class:`Redactor` knows every secret value in play (secrets read from the environment or
files, and every token minted or fetched with them) and replaces each, in raw, base64 and
base64url form, with ``<redacted>``. Header values that carry credentials are hidden whole.
"""

from __future__ import annotations

import base64
import re
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # monitor.keep imports this module
    from monitor.keep import Kept

REDACTED = "<redacted>"
MIN_SECRET_LEN = 4  # shorter values would redact ordinary words

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
     "x-auth-token", "sec-websocket-protocol"}
)

# A header whose name says it carries a credential (X-Access-Token, X-Session-Id,
# X-Api-Key, ...) is hidden whole too: a token an answer hands over in a header of its own
# (a login moved its token out of the body) is no secret the redactor knows yet.
_SENSITIVE_WORDS = ("token", "secret", "session", "cookie", "password", "apikey", "api-key",
                    "credential")

# "Bearer <token>": the scheme is kept, it says what kind of credential went.
_SCHEMED = frozenset({"authorization", "proxy-authorization"})


def spellings(secret: str) -> set[str]:
    """``secret`` as it travels: raw, base64 and base64url, with and without padding."""
    raw = secret.encode("utf-8", "replace")
    forms = {secret}
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode("ascii")
        forms.add(text)
        forms.add(text.rstrip("="))
    return forms


def _forms(secret: str) -> set[str]:
    return {f for f in spellings(secret) if len(f) >= MIN_SECRET_LEN}


class Redactor:
    """Thread-safe set of secret values; :meth:`redact` scrubs them from text.

    Secrets live as long as the process. Tokens are re-minted all day long, so only the
    last few of each provider are kept: an expired token is no longer sent anywhere, and an
    ever-growing pattern would slow every log line of a daemon that runs for months.
    """

    TOKENS_KEPT = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._tokens: dict[str, deque[str]] = {}
        # What redact() replaces (None: no secret known yet); read-only outside this class.
        # Text redacted with one pattern reads the same while this is the same object: a
        # cache of redacted text (monitor.keep) checks it.
        self.pattern: re.Pattern[str] | None = None
        # Headers monitor.keep found nothing to hide in, as received -> as kept (bounded
        # there): replaced by an empty dict whenever the secrets change, since a new
        # secret may be in one of them.
        self.header_memo: dict[tuple[str, str], tuple[Kept, Kept]] = {}
        for s in secrets:
            self.add(s)

    def _known(self) -> set[str]:
        known = set(self._secrets)
        for tokens in self._tokens.values():
            for token in tokens:
                known |= _forms(token)
        return known

    def add(self, secret: str | None) -> None:
        """Register a long-lived secret (a key, a password)."""
        if not secret or len(secret) < MIN_SECRET_LEN:
            return
        with self._lock:
            new = _forms(secret) - self._known()
            if new:
                self._secrets |= new
                self._compile()

    def add_token(self, provider: str, token: str | None) -> None:
        """Register a token of ``provider``; the oldest beyond TOKENS_KEPT is forgotten."""
        if not token or len(token) < MIN_SECRET_LEN:
            return
        with self._lock:
            tokens = self._tokens.setdefault(provider, deque(maxlen=self.TOKENS_KEPT))
            if token in tokens:
                return
            tokens.append(token)
            self._compile()

    def _compile(self) -> None:
        # Longest first so a token is replaced whole rather than around a shorter secret.
        alternatives = sorted(self._known(), key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(a) for a in alternatives))
        self.header_memo = {}  # after the new pattern: see Keeper.header

    def redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        pattern = self.pattern
        if pattern is None:
            return text
        return pattern.sub(REDACTED, text)

    def may_hold_secret(self, text: str) -> bool:
        """Whether :meth:`redact` might change ``text`` (False: it would return it as is)."""
        pattern = self.pattern
        return pattern is not None and pattern.search(text) is not None

    def header(self, name: str, value: str) -> str:
        """``value`` as it may be shown: a credential header's hidden whole (its scheme
        kept), the token offer of a subprotocol header hidden, any other redacted."""
        lowered = name.lower()
        if lowered == "sec-websocket-protocol":
            # Keep the negotiated protocol names, hide the token one.
            parts = [p.strip() for p in value.split(",")]
            return ", ".join("jwt." + REDACTED if p.startswith("jwt.") else p for p in parts)
        if lowered in _SCHEMED:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            return f"{scheme} {REDACTED}".strip()
        if lowered in SENSITIVE_HEADERS or any(w in lowered for w in _SENSITIVE_WORDS):
            # Whole: the first word of "sid=abc; Path=/" is the cookie itself.
            return REDACTED
        return self.redact(value) or ""
