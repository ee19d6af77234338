"""``Authorization: Basic`` checked against the bcrypt hashes of a web config.

bcrypt is slow by design, so the check is built around not doing it:

- a successful verification is remembered under an HMAC of the credentials (keyed with a
  random per-process key, so the cache holds nothing that could be checked offline): a
  scraper pays bcrypt once, then never waits again, whatever else is going on;
- a failed one is remembered too, in a cache of its own (a flood cannot evict the good
  entries): the same wrong password sent again costs nothing;
- what is left goes through a :class:`~monitor.web.hashgate.FairGate`: a few at a time,
  clients in turn, a bounded waiting room and a 429 beyond it (answered after
  ``REFUSAL_DELAY``: it costs nothing to hold, and a flood's connections then cannot spin).

Timing tells nothing: an unknown user costs a verification against a dummy hash of the
highest configured cost, and a failed verification of a cheaper hash is held back until it
has taken as long as one at the highest cost would have (bcrypt's time doubles with each
cost step; the pause is the measured time times the difference). A success is not held
back: whoever gets one knows the password already.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from enum import Enum

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor.web.hashgate import FairGate, Saturated, client_of

REALM = "synthmon"
CACHE_SIZE = 1024  # successful verifications remembered
DENIED_CACHE_SIZE = 4096  # failed verifications remembered (about 100 bytes each)
RETRY_AFTER = 1  # seconds, in the answer to a request refused because the gate is full
# A refused request is answered this much later: a flooding connection that sends its next
# guess as soon as it has an answer would otherwise spin, and the CPU its refusals cost
# (thousands a second) is the probes' and the honest logins'.
REFUSAL_DELAY = 0.5


def cost_of(hashed: bytes) -> int:
    """The cost (log2 of the rounds) of a ``$2b$NN$...`` hash."""
    return int(hashed[4:6])


class Verdict(Enum):
    OK = "ok"
    DENIED = "denied"  # no, wrong or unknown credentials
    BUSY = "busy"  # not checked: too many checks waiting


class BasicAuth:
    """See the module docstring."""

    def __init__(self, users: dict[str, bytes], gate: FairGate | None = None) -> None:
        self.users = users
        self.gate = gate or FairGate()
        self._key = secrets.token_bytes(32)
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._denied: OrderedDict[bytes, None] = OrderedDict()
        self.max_cost = max((cost_of(h) for h in users.values()), default=10)
        # Of the highest cost, so that an unknown user takes as long as the slowest known.
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(),
                                    bcrypt.gensalt(rounds=max(4, min(self.max_cost, 31))))
        self.verifications = 0  # bcrypt computations done (for tests and curiosity)

    def _cache_key(self, user: bytes, password: bytes, hashed: bytes) -> bytes:
        message = b"\0".join((base64.b64encode(user), base64.b64encode(password), hashed))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def check(self, header: str | None, client: str = "?") -> Verdict:
        credentials = _parse_basic(header)
        if credentials is None:
            return Verdict.DENIED
        user, password = credentials
        known = self.users.get(user.decode("utf-8", "replace"))
        hashed = known if known is not None else self._dummy
        key = self._cache_key(user, password, hashed)
        if key in self._ok:
            self._ok.move_to_end(key)
            return Verdict.OK
        if key in self._denied:
            self._denied.move_to_end(key)
            return Verdict.DENIED
        try:
            ok, took = await self.gate.run(client, lambda: _timed_checkpw(password, hashed))
        except Saturated:
            return Verdict.BUSY
        self.verifications += 1
        if ok and known is not None:
            _remember(self._ok, key, CACHE_SIZE)
            return Verdict.OK
        _remember(self._denied, key, DENIED_CACHE_SIZE)
        steps = self.max_cost - cost_of(hashed)
        if steps > 0:  # as long as a verification at the highest cost would have taken
            await asyncio.sleep(took * (2 ** steps - 1))
        return Verdict.DENIED

    def middleware(self, open_paths: Collection[str] = ()) -> Middleware:
        """Every request needs credentials but GET/HEAD of ``open_paths`` (the health
        endpoints, when the web config leaves them open)."""
        open_ = frozenset(open_paths)

        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in open_ and request.method in ("GET", "HEAD"):
                return await handler(request)
            verdict = await self.check(request.headers.get("Authorization"),
                                       client_of(request.remote))
            if verdict is Verdict.OK:
                return await handler(request)
            if verdict is Verdict.BUSY:
                await asyncio.sleep(REFUSAL_DELAY)
                return web.Response(
                    status=429, text="429 Too Many Requests: too many password checks "
                                     "waiting; retry shortly\n",
                    headers={"Retry-After": str(RETRY_AFTER)})
            return web.Response(
                status=401, text="401 Unauthorized: synthmon needs credentials\n",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        return basic_auth

    def close(self) -> None:
        self.gate.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _remember(cache: OrderedDict[bytes, None], key: bytes, size: int) -> None:
    cache[key] = None
    while len(cache) > size:
        cache.popitem(last=False)


def _timed_checkpw(password: bytes, hashed: bytes) -> tuple[bool, float]:
    """The verification and the time it took in its thread (not the time it waited)."""
    t0 = time.perf_counter()
    try:
        ok = bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a password over bcrypt's 72 bytes, a malformed hash
        ok = False
    return ok, time.perf_counter() - t0


def _parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user, password


__all__ = ["CACHE_SIZE", "DENIED_CACHE_SIZE", "REALM", "REFUSAL_DELAY", "RETRY_AFTER",
           "BasicAuth", "Verdict", "cost_of"]
