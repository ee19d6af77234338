"""The REST side of the imitation backend, what an end-to-end test walks through before and
after the WebSocket: log in (email and password → an access token), create a thread, read it
back, delete it. The WebSocket refuses a message naming a thread that is not the caller's
(:meth:`ThreadStore.owned`).

Each step has a mode that breaks it (see :mod:`monitor.demo.modes`): ``login_refused``,
``token_in_header`` (the token in a response header instead of the body),
``login_echoes_password``, ``thread_create_fails`` (500), ``thread_create_200`` (200
instead of 201), ``events_never_complete`` (the WebSocket side) and ``thread_delete_fails``.
"""

from __future__ import annotations

import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import jwt
from aiohttp import web

from monitor.demo.simulator.protocol import AUDIENCE, ISSUER, _bearer, _json_error

LOGIN_PATH: Final = "/auth/login"
THREADS_PATH: Final = "/api/threads"
# The one account of the simulated staging: the end-to-end test user. Its password is the
# simulator's ``e2e_password`` (``synthmon simulator --password-env``, E2E_PASSWORD), by
# default this published, demo-only one (it guards nothing but the loopback look-alike).
E2E_EMAIL: Final = "e2e@example.com"
DEMO_PASSWORD: Final = "synthmon-demo-only-password"
E2E_USER: Final = "staging-e2e-user-002"
TOKEN_TTL: Final = 900
TOKEN_HEADER: Final = "X-Access-Token"  # where token_in_header puts it
# Threads a run leaves behind when its delete fails are dropped oldest first: the simulator
# runs for days under a probe that creates one a minute.
MAX_THREADS: Final = 1000
MAX_THREAD_MESSAGES: Final = 50
MAX_TITLE: Final = 200
MAX_BODY: Final = 64 * 1024


@dataclass
class Thread:
    id: str
    owner: str
    title: str
    created_at: float
    messages: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_THREAD_MESSAGES))

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "user_id": self.owner,
                "created_at": self.created_at, "messages": list(self.messages)}


class ThreadStore:
    """Every user's threads, bounded (the oldest go first)."""

    def __init__(self, limit: int = MAX_THREADS) -> None:
        self.limit = limit
        self._threads: collections.OrderedDict[str, Thread] = collections.OrderedDict()

    def create(self, owner: str, title: str) -> Thread:
        thread = Thread(id=f"thread_{uuid.uuid4().hex[:16]}", owner=owner,
                        title=title[:MAX_TITLE], created_at=time.time())
        self._threads[thread.id] = thread
        while len(self._threads) > self.limit:
            self._threads.popitem(last=False)
        return thread

    def owned(self, thread_id: object, owner: str) -> Thread | None:
        """The thread of that id if ``owner``'s, else None (another's is as good as none)."""
        thread = self._threads.get(thread_id) if isinstance(thread_id, str) else None
        return thread if thread is not None and thread.owner == owner else None

    def delete(self, thread_id: str, owner: str) -> bool:
        if self.owned(thread_id, owner) is None:
            return False
        del self._threads[thread_id]
        return True

    def of(self, owner: str) -> list[Thread]:
        return [t for t in self._threads.values() if t.owner == owner]

    def __len__(self) -> int:
        return len(self._threads)


class Backend(Protocol):
    """What the REST handlers read of the simulator."""

    @property
    def mode(self) -> str: ...

    jwt_secret: str
    e2e_password: str
    threads: ThreadStore

    def admit(self, request: web.Request, tokens: list[str]) -> dict[str, Any] | None: ...


def mint_access_token(secret: str, subject: str, email: str) -> str:
    """What the staging auth service hands the e2e user at login."""
    now = int(time.time())
    return jwt.encode({"sub": subject, "email": email, "type": "access", "iss": ISSUER,
                       "aud": AUDIENCE, "iat": now, "exp": now + TOKEN_TTL,
                       "permissions": ["read", "write", "execute"]}, secret, algorithm="HS256")


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object (None when there is none or it is not an object)."""
    try:
        raw = await request.content.read(MAX_BODY + 1)
    except ConnectionError:
        # The caller hung up before its body came (a probe's timeout on a loaded machine):
        # its doing, answered as a bad request nobody reads, not logged as a server error.
        raise web.HTTPBadRequest(reason="the connection closed before the body") from None
    if len(raw) > MAX_BODY or not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


class RestApi:
    """The handlers of login and threads, over the simulator's state and mode."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def routes(self, app: web.Application) -> None:
        app.router.add_post(LOGIN_PATH, self.login)
        app.router.add_post(THREADS_PATH, self.create_thread)
        app.router.add_get(THREADS_PATH + "/{thread_id}", self.read_thread)
        app.router.add_delete(THREADS_PATH + "/{thread_id}", self.delete_thread)

    async def login(self, request: web.Request) -> web.Response:
        b = self.backend
        body = await _json_body(request)
        if body is None:
            return _json_error(422, "expected a JSON object with email and password")
        email, password = body.get("email"), body.get("password")
        if b.mode == "login_refused" or email != E2E_EMAIL or password != b.e2e_password:
            return _json_error(401, "Invalid email or password")
        token = mint_access_token(b.jwt_secret, E2E_USER, E2E_EMAIL)
        user: dict[str, Any] = {"id": E2E_USER, "email": E2E_EMAIL}
        if b.mode == "login_echoes_password":
            # A serializer that dumps the whole login form back into the user object.
            user["password"] = password
        answer: dict[str, Any] = {"token_type": "bearer", "expires_in": TOKEN_TTL,
                                  "user": user}
        if b.mode == "token_in_header":
            # A new auth middleware moved the token out of the body.
            return web.json_response(answer, headers={TOKEN_HEADER: token})
        return web.json_response({"access_token": token, **answer})

    def _caller(self, request: web.Request) -> tuple[dict[str, Any] | None, bool]:
        """(claims of the caller, whether a token was sent)."""
        token = _bearer(request)
        tokens = [token] if token else []
        return self.backend.admit(request, tokens), bool(tokens)

    def _refused(self, sent: bool) -> web.Response:
        return _json_error(403, "Invalid or expired token" if sent else "Not authenticated")

    async def create_thread(self, request: web.Request) -> web.Response:
        claims, sent = self._caller(request)
        if claims is None:
            return self._refused(sent)
        if self.backend.mode == "thread_create_fails":
            return _json_error(500, "Internal Server Error")
        body = await _json_body(request) or {}
        given = body.get("title")
        title = given if isinstance(given, str) else "New thread"
        thread = self.backend.threads.create(str(claims.get("sub", "anonymous")), title)
        # thread_create_200: created, but answered as if it had been found.
        status = 200 if self.backend.mode == "thread_create_200" else 201
        return web.json_response(thread.public(), status=status,
                                 headers={"Location": f"{THREADS_PATH}/{thread.id}"})

    async def read_thread(self, request: web.Request) -> web.Response:
        claims, sent = self._caller(request)
        if claims is None:
            return self._refused(sent)
        thread = self.backend.threads.owned(request.match_info["thread_id"],
                                            str(claims.get("sub", "anonymous")))
        if thread is None:
            return _json_error(404, "Thread not found")
        return web.json_response(thread.public())

    async def delete_thread(self, request: web.Request) -> web.Response:
        claims, sent = self._caller(request)
        if claims is None:
            return self._refused(sent)
        owner = str(claims.get("sub", "anonymous"))
        thread_id = request.match_info["thread_id"]
        if self.backend.threads.owned(thread_id, owner) is None:
            return _json_error(404, "Thread not found")
        if self.backend.mode == "thread_delete_fails":
            return _json_error(500, "Internal Server Error")
        self.backend.threads.delete(thread_id, owner)
        return web.Response(status=204)


__all__ = ["DEMO_PASSWORD", "E2E_EMAIL", "E2E_USER", "LOGIN_PATH", "MAX_THREADS", "THREADS_PATH",
           "TOKEN_HEADER", "TOKEN_TTL", "Backend", "RestApi", "Thread", "ThreadStore",
           "mint_access_token"]
