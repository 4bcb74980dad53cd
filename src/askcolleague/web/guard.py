"""The web app's guard: an ASGI middleware in front of Gradio's routes.

Gradio keys a page's session (its gr.State, its event queue) by a `session_hash` that the browser
makes up and sends in plain URLs (`/gradio_api/queue/data?session_hash=…`). With login on, the guard
binds every session hash to the user who first uses it and refuses (403) any request that names a
session of another user, so knowing someone's session hash gives nothing. It also:

- limits failed logins per username and per client address, refusing (429) *before* the password
  is checked, so a password-guessing run costs no scrypt work (LoginLimiter); bad API tokens count
  as failed logins of their token id and address;
- accepts `Authorization: Bearer <API token>` on every route (the gradio API, and the MCP endpoint,
  which needs one with login on): the request is answered as the token's user, exactly as if they
  had logged in (a login token valid for that one request is handed to Gradio);
- serves the MCP endpoint (`/gradio_api/mcp/`, streamable HTTP) when given one, after the checks above;
- expires login sessions after an idle time and a maximum age (LoginSessions);
- turns off the routes this app does not use (uploads, files, monitoring, deep links, streams…);
- sets security headers on every response.

Everything here runs on the server's event loop (no locks needed).
"""
from __future__ import annotations

import json
import math
import re
import secrets
import sys
import time
import urllib.parse
from collections import OrderedDict, deque
from typing import Any, Callable

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request

from ..errors import LoginError
from .auth import token_id

API = "/gradio_api"

# A policy the Gradio page works with (it needs inline scripts and styles, and `new Function` for
# js_on_load): nothing loads from or talks to another origin, no plugins, no framing, no <base>.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; connect-src 'self'; "
       "worker-src 'self' blob:; frame-src 'none'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

# Gradio routes the app has no use for: no file inputs or outputs, no streaming, no monitoring
# dashboard, no deep links (which copy a session's values into a file anyone with its name can load).
_OFF = re.compile(r"(?:/gradio_api)?/(?:upload|upload_progress|file=.*|file/.*|proxy=.*|stream/.*|process_recording"
                  r"|deep_link|dev/reload|runs|run-history/.*|monitoring|monitoring/.*|profiling/.*|vibe-edit"
                  r"|undo-vibe-edit|vibe-code|vibe-starter-queries|mcp|mcp/.*)")
# Routes that act on a session or an event: they need a logged-in user (with login on).
_SESSION_ROUTES = re.compile(r"/gradio_api/(?:queue/join|queue/data|cancel|reset|heartbeat/.*|run/.*|api/.*"
                             r"|call/.*|component_server)")
_HEARTBEAT = re.compile(r"/gradio_api/heartbeat/([^/]+)")
_CALL_EVENT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/([^/]+)")
_CALL_POST = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+")
MCP_PATH = API + "/mcp"  # the MCP endpoint (streamable HTTP), with or without its trailing slash
USER_KEY = "askcolleague.user"  # the ASGI scope key naming the API token's user on an MCP request
MAX_BODY = 4 * 2**20   # a queued event's JSON (the chat history is sent along): 4 MiB is ample
MAX_LOGIN_BODY = 16 * 2**10


def _log(msg: str) -> None:
    print(f"askcolleague: {msg}", file=sys.stderr, flush=True)


def _printable(s: Any, n: int = 64) -> str:
    """A client-chosen string, safe for one log line: control characters replaced, at most n characters."""
    s = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", str(s))
    return s if len(s) <= n else s[:n] + "…"


def _seconds(s: float) -> int:
    return max(1, math.ceil(s))


# ------------------------------------------------------------------------------------------ login limits

class _Counter:
    __slots__ = ("failures", "pending", "locked_until", "lockouts", "last")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.pending = 0
        self.locked_until = 0.0
        self.lockouts = 0
        self.last = 0.0


class LoginLimiter:
    """Failed logins per username and per client address, with lockouts that double each time.

    A key (a username, or an address) with `max_failures` failed logins within `window` seconds is
    locked for `lockout` seconds (2x, 4x… for each further lockout, at most 64x); while locked every
    login for it is refused without checking the password. Logins being checked count as failures
    until they succeed, so parallel guesses cannot overshoot the limit. A success clears its username.
    """

    MAX_KEYS = 100_000
    MAX_BACKOFF = 64

    def __init__(self, max_failures: int = 5, max_address_failures: int = 20, window: float = 300.0,
                 lockout: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] = _log) -> None:
        self.max = {"user": max_failures, "addr": max_address_failures}
        self.window, self.lockout, self.clock, self.log = window, lockout, clock, log
        self._keys: OrderedDict[tuple[str, str], _Counter] = OrderedDict()

    def _get(self, key: tuple[str, str], now: float) -> _Counter:
        c = self._keys.get(key)
        if c is None:
            c = self._keys[key] = _Counter()
            if len(self._keys) > self.MAX_KEYS:
                self._prune(now)
        self._keys.move_to_end(key)
        c.last = now
        while c.failures and c.failures[0] <= now - self.window:
            c.failures.popleft()
        return c

    def _prune(self, now: float) -> None:
        for key, c in list(self._keys.items()):
            stale = not c.failures or c.failures[-1] <= now - self.window
            if not c.pending and c.locked_until + self.window < now and stale:
                del self._keys[key]
        while len(self._keys) > self.MAX_KEYS:  # the least recently seen go first
            self._keys.popitem(last=False)

    def _keys_for(self, username: str, addr: str) -> list[tuple[str, str]]:
        return [k for k in (("user", username), ("addr", addr)) if self.max[k[0]] > 0]

    def begin(self, username: str, addr: str) -> float:
        """Seconds the login must wait (refuse it); 0 = go ahead, and call end() with the outcome."""
        now = self.clock()
        wait = 0.0
        for key in self._keys_for(username, addr):
            c = self._get(key, now)
            if c.locked_until > now:
                wait = max(wait, c.locked_until - now)
            elif len(c.failures) + c.pending >= self.max[key[0]]:  # guesses in flight fill the quota
                wait = max(wait, 1.0)
        if wait:
            return wait
        for key in self._keys_for(username, addr):
            self._get(key, now).pending += 1
        return 0.0

    def blocked(self, username: str, addr: str) -> float:
        """Seconds a credential that needs no slow check (an API token) must wait: only lockouts count,
        not checks in flight (a valid token is used by many calls at once). 0 = check it, then record()."""
        now = self.clock()
        return max([c.locked_until - now for c in (self._get(k, now) for k in self._keys_for(username, addr))
                    if c.locked_until > now], default=0.0)

    def record(self, username: str, addr: str, ok: bool) -> None:
        """The outcome of a credential checked after blocked() said 0."""
        self._outcome(username, addr, ok, pending=False)

    def end(self, username: str, addr: str, ok: bool | None) -> None:
        """The outcome of a login that begin() let through: True, False (a failure) or None (neither)."""
        self._outcome(username, addr, ok, pending=True)

    def _outcome(self, username: str, addr: str, ok: bool | None, pending: bool) -> None:
        now = self.clock()
        for key in self._keys_for(username, addr):
            c = self._get(key, now)
            if pending:
                c.pending = max(0, c.pending - 1)
            if ok and key[0] == "user":
                c.failures.clear()
                c.lockouts = 0
            elif ok is False:
                c.failures.append(now)
                if len(c.failures) >= self.max[key[0]]:
                    secs = self.lockout * min(2 ** c.lockouts, self.MAX_BACKOFF)
                    c.locked_until, c.lockouts, n = now + secs, c.lockouts + 1, len(c.failures)
                    c.failures.clear()
                    user, where = _printable(username), _printable(addr)
                    self.log(f"login: {n} failed attempts for user {user!r} from {where}; locked for {_seconds(secs)} s"
                             if key[0] == "user" else f"login: {n} failed attempts from {where} (the last for user "
                             f"{user!r}); address locked for {_seconds(secs)} s")


# ------------------------------------------------------------------------------------------ login sessions

class LoginSessions:
    """Expiry of Gradio's login tokens (`app.tokens`: token -> username): after `idle` seconds
    without a request, or `max_age` seconds after the login (0 = no limit). An expired token is
    deleted, so Gradio treats its requests as not logged in (401; the page shows the login form)."""

    SWEEP_EVERY = 30.0

    def __init__(self, idle: float, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle, self.max_age, self.clock = idle, max_age, clock
        self._seen: dict[str, list[float]] = {}  # token -> [logged in, last request]
        self._swept = 0.0

    def started(self, token: str) -> None:
        now = self.clock()
        self._seen[token] = [now, now]

    def _expired(self, rec: list[float], now: float) -> bool:
        return bool((self.max_age and now - rec[0] > self.max_age) or (self.idle and now - rec[1] > self.idle))

    def touch(self, tokens: dict, token: str | None) -> None:
        """A request with `token`: expire it (delete it from `tokens`) or note the request."""
        now = self.clock()
        if now - self._swept > self.SWEEP_EVERY:
            self.sweep(tokens, now)
        if not token or token not in tokens:
            return
        rec = self._seen.setdefault(token, [now, now])
        if self._expired(rec, now):
            tokens.pop(token, None)
            self._seen.pop(token, None)
        else:
            rec[1] = now

    def sweep(self, tokens: dict, now: float | None = None) -> None:
        """Delete every expired token (and forget tokens Gradio no longer holds, e.g. after a logout)."""
        now = self.clock() if now is None else now
        self._swept = now
        for token in list(tokens):
            rec = self._seen.setdefault(token, [now, now])
            if self._expired(rec, now):
                tokens.pop(token, None)
        for token in [t for t in self._seen if t not in tokens]:
            del self._seen[token]


# ------------------------------------------------------------------------------------------ session binding

class SessionBindings:
    """Session hash (or event id) -> the user who used it first. A user's oldest bindings are
    dropped beyond `per_user` (only their own: another user cannot push anyone's bindings out)."""

    def __init__(self, per_user: int = 10_000) -> None:  # Gradio keeps 10,000 sessions in all
        self.per_user = per_user
        self._owner: dict[str, str] = {}
        self._by_user: dict[str, OrderedDict[str, None]] = {}

    def owner(self, key: str) -> str | None:
        return self._owner.get(key)

    def claim(self, key: str, user: str) -> bool:
        """Bind `key` to `user` if unbound; True when it is (now) theirs."""
        owner = self._owner.get(key)
        if owner is not None:
            if owner == user:
                self._by_user[user].move_to_end(key)
            return owner == user
        mine = self._by_user.setdefault(user, OrderedDict())
        mine[key] = None
        self._owner[key] = user
        while len(mine) > self.per_user:
            old, _ = mine.popitem(last=False)
            self._owner.pop(old, None)
        return True


# ------------------------------------------------------------------------------------------ the middleware

def bearer_token(scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    auth = Headers(scope=scope).get("authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _with_cookie(scope, name: str, value: str) -> dict:
    """A copy of an HTTP scope whose Cookie header holds only `name=value` of Gradio's login cookies."""
    drop = re.compile(r"\s*access-token-[^=;]*=[^;]*;?")
    headers, cookies = [], []
    for k, v in scope.get("headers", []):
        if k.lower() == b"cookie":
            rest = drop.sub("", v.decode("latin-1")).strip(" ;")
            if rest:
                cookies.append(rest)
        else:
            headers.append((k, v))
    cookies.append(f"{name}={value}")
    return dict(scope, headers=headers + [(b"cookie", "; ".join(cookies).encode("latin-1"))])


async def _reply(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail, "error": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


async def _read_body(scope, receive, limit: int) -> bytes:
    length = Headers(scope=scope).get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise _TooLarge
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return again


class Guard:
    """The ASGI middleware (installed through launch's `app_kwargs`, before the server starts).

    `login`: login is on (Gradio `auth`); `users`: the Users object, for refusing logins while the
    users file is unusable and for API tokens; `mcp`: the MCP endpoint's ASGI app (None: no MCP);
    the limits and timeouts come from `settings` (see settings.py).
    """

    def __init__(self, app, *, login: bool, users=None, settings=None, mcp=None,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = _log) -> None:
        self.app, self.login, self.users, self.log, self.mcp = app, login, users, log, mcp
        get = (lambda name, default: getattr(settings, name, default)) if settings is not None else \
            (lambda name, default: default)
        self.limiter = LoginLimiter(int(get("login_max_failures", 5)), int(get("login_max_address_failures", 20)),
                                    float(get("login_window_seconds", 300.0)),
                                    float(get("login_lockout_seconds", 60.0)), clock=clock, log=log)
        self.sessions = LoginSessions(float(get("session_idle_minutes", 60.0)) * 60,
                                      float(get("session_max_hours", 12.0)) * 3600, clock=clock)
        self.bindings = SessionBindings()

    # -------------------------------------------------------------- helpers

    @staticmethod
    def _token(scope, gapp) -> str | None:
        """The login token Gradio reads for this request (routes.get_current_user)."""
        cookie_id = getattr(gapp, "cookie_id", None)
        if cookie_id is None:
            return None
        cookies = HTTPConnection(scope).cookies
        return cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")

    def _with_headers(self, send):
        async def wrapped(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                extra = [h for h in SECURITY_HEADERS if h[0] not in have]
                msg = dict(msg, headers=list(msg.get("headers", [])) + extra)
            await send(msg)
        return wrapped

    def _refuse_session(self, user: str, key: str, path: str, addr: str) -> None:
        self.log(f"refused: user {_printable(user)!r} from {_printable(addr)} used a session of another user "
                 f"({_printable(path, 40)})")

    @staticmethod
    def _event_session(gapp, event_id: str) -> tuple[str | None, str | None]:
        """(session hash, username) of a queued or just-finished event, as far as the queue knows."""
        try:
            queue = gapp.get_blocks()._queue
        except Exception:
            return None, None
        event = queue.event_ids_to_events.get(event_id)
        if event is not None:
            return event.session_hash, event.username
        for session, ids in list(queue.pending_event_ids_session.items()):
            if event_id in ids:
                return session, None
        return None, None

    def _event_keys(self, gapp, event_id: str, user: str | None, keys: list[str]) -> bool:
        """Add the session of an event to `keys`; False when the event is another user's."""
        session, owner = self._event_session(gapp, event_id)
        if session:
            keys.append(session)
        return owner is None or owner == user or user is None  # no user: refused with 401 below

    # -------------------------------------------------------------- the request

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.login:  # the app has no websocket routes
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send)
        root = scope.get("root_path") or ""
        path = scope["path"]
        if root and path.startswith(root):
            path = path[len(root):]
        path = path.rstrip("/") or "/"
        method = scope["method"]
        addr = (scope.get("client") or ("unknown", 0))[0]
        if path == MCP_PATH and self.mcp is not None:
            await self._handle_mcp(scope, receive, send, addr)
            return
        if _OFF.fullmatch(path):
            await _reply(send, 404, "Not Found")
            return
        gapp = scope.get("app")
        tokens = getattr(gapp, "tokens", None)
        if self.login and tokens is not None:
            self.sessions.touch(tokens, self._token(scope, gapp))
        if method == "POST" and path == "/login" and self.login:
            await self._handle_login(scope, receive, send, gapp, addr)
            return
        bearer = bearer_token(scope) if self.login and tokens is not None else None
        if bearer is None:
            await self._route(scope, receive, send, path, method, gapp, tokens, addr)
            return
        username = await self._token_user(bearer, addr, send)
        if username is None:
            return
        # Answered as the token's user: a Gradio login token for this request only, never sent to anyone.
        once = secrets.token_urlsafe(32)
        tokens[once] = username
        try:
            await self._route(_with_cookie(scope, f"access-token-{gapp.cookie_id}", once), receive, send, path,
                              method, gapp, tokens, addr)
        finally:
            tokens.pop(once, None)

    async def _token_user(self, token: str, addr: str, send) -> str | None:
        """The username of a valid API token; otherwise None, after replying 401 (wrong or revoked),
        429 (too many bad tokens from this address, or for this token id) or 503 (users file broken)."""

        key = f"token:{token_id(token) or '?'}"
        wait = self.limiter.blocked(key, addr)
        if wait:
            secs = _seconds(wait)
            await _reply(send, 429, f"too many failed logins; try again in {secs} s", [(b"retry-after", str(secs).encode())])
            return None
        try:
            user = self.users.check_token(token) if self.users is not None else None
        except LoginError as e:
            await _reply(send, 503, str(e))
            return None
        self.limiter.record(key, addr, user is not None)
        if user is None:
            await _reply(send, 401, "invalid or revoked API token; create one with `askcolleague users token USERNAME`",
                         [(b"www-authenticate", b'Bearer error="invalid_token"')])
            return None
        return user.username

    async def _handle_mcp(self, scope, receive, send, addr: str) -> None:
        """The MCP endpoint: with login on, only with a valid API token, whose user the tools answer as."""
        if self.login:
            token = bearer_token(scope)
            if token is None:
                await _reply(send, 401, "MCP needs an API token: send `Authorization: Bearer <token>` (create one "
                                        "with `askcolleague users token USERNAME`)",
                             [(b"www-authenticate", b'Bearer realm="askcolleague"')])
                return
            username = await self._token_user(token, addr, send)
            if username is None:
                return
            scope = dict(scope, **{USER_KEY: username})
        await self.mcp(scope, receive, send)

    async def _route(self, scope, receive, send, path: str, method: str, gapp, tokens, addr: str) -> None:
        """A gradio route: bind the sessions it names to its user (refusing another user's), then pass it on."""
        # The session hashes a request names, read exactly as Gradio reads them: the query string
        # (as Starlette parses it), the path (already percent-decoded, as routing sees it), the JSON body.
        user = tokens.get(self._token(scope, gapp)) if tokens is not None and self.login else None
        keys: list[str] = [v for k, v in urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                               keep_blank_values=True) if k == "session_hash"]
        m = _HEARTBEAT.fullmatch(path)
        if m:
            keys.append(m.group(1))
        if method in ("POST", "PUT", "PATCH") and path.startswith(API + "/"):
            try:
                body = await _read_body(scope, receive, MAX_BODY)
            except _TooLarge:
                await _reply(send, 413, "request too large")
                return
            receive = _replay(body, receive)
            try:
                data = json.loads(body) if body.strip() else None
            except ValueError:  # a form or a file: no route of this app takes one (a session hash could hide in it)
                await _reply(send, 415, "expected a JSON body")
                return
            if isinstance(data, dict):
                h = data.get("session_hash")
                if h is not None and not isinstance(h, str):
                    await _reply(send, 400, "session_hash must be a string")
                    return
                if h is not None:  # "" too: a session everyone could name
                    keys.append(h)
                ev = data.get("event_id")
                if isinstance(ev, str) and ev and path in (API + "/cancel", API + "/reset") and self.login:
                    if not self._event_keys(gapp, ev, user, keys):
                        self._refuse_session(user, ev, path, addr)
                        await _reply(send, 403, "this event belongs to another user's session")
                        return
        if not self.login:  # no users: nobody to bind a session to
            await self.app(scope, receive, send)
            return
        m = _CALL_EVENT.fullmatch(path)
        if method == "GET" and m:
            keys.append(m.group(1))
            if not self._event_keys(gapp, m.group(1), user, keys):
                self._refuse_session(user, m.group(1), path, addr)
                await _reply(send, 403, "this event belongs to another user's session")
                return
        if keys or _SESSION_ROUTES.fullmatch(path):
            if user is None:
                await _reply(send, 401, "Not authenticated: log in first")
                return
            for key in keys:
                if not self.bindings.claim(key, user):
                    self._refuse_session(user, key, path, addr)
                    await _reply(send, 403, "this session belongs to another user; reload the page")
                    return
        if method == "POST" and _CALL_POST.fullmatch(path) and user is not None:
            send = self._binding_event_ids(send, user)
        await self.app(scope, receive, send)

    def _binding_event_ids(self, send, user: str):
        """For POST /call/<api>: bind the returned event id (the session of a call without one) to the user."""
        parts: list[bytes] = []

        async def wrapped(msg):
            if msg["type"] == "http.response.body":
                parts.append(msg.get("body", b""))
                if not msg.get("more_body") and sum(map(len, parts)) < 4096:
                    try:
                        ev = json.loads(b"".join(parts)).get("event_id")
                    except (ValueError, AttributeError):
                        ev = None
                    if isinstance(ev, str):
                        self.bindings.claim(ev, user)
            await send(msg)
        return wrapped

    async def _handle_login(self, scope, receive, send, gapp, addr: str) -> None:
        problem = self.users.unavailable() if self.users is not None else None
        if problem:
            await _reply(send, 503, problem)
            return
        try:
            body = await _read_body(scope, receive, MAX_LOGIN_BODY)
        except _TooLarge:
            await _reply(send, 413, "request too large")
            return
        try:
            form = await Request(scope, _replay(body, receive)).form()
            name = form.get("username")
            await form.close()
        except Exception:  # a malformed form: Gradio answers it (422) without checking any password
            name = None
        username = name.strip() if isinstance(name, str) else ""
        wait = self.limiter.begin(username, addr)
        if wait:
            secs = _seconds(wait)
            await _reply(send, 429, f"too many failed logins; try again in {secs} s",
                         [(b"retry-after", str(secs).encode())])
            return
        outcome: dict[str, Any] = {}
        cookie = f"access-token-{getattr(gapp, 'cookie_id', '')}=".encode()

        async def watch(msg):
            if msg["type"] == "http.response.start":
                outcome["status"] = msg["status"]
                for k, v in msg.get("headers", []):
                    if k.lower() == b"set-cookie" and v.startswith(cookie):
                        outcome["token"] = v[len(cookie):].split(b";", 1)[0].decode("latin-1").strip('"')
            await send(msg)

        try:
            await self.app(scope, _replay(body, receive), watch)
        finally:
            status = outcome.get("status")
            self.limiter.end(username, addr, True if status == 200 else False if status in (400, 401, 403) else None)
            if status == 200 and outcome.get("token"):
                self.sessions.started(outcome["token"])
