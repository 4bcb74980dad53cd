"""Login accounts: a users file of scrypt password hashes and API token hashes, each user answering as a person
of the index."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import yaml

from .. import safeyaml
from ..errors import ConfigError, LoginError

# scrypt cost: N=2^15, r=8, p=1 takes ~0.1 s and 32 MiB per check on one core of a small server.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAXMEM = 256 * 2**20
_HASH = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
_FIELDS = ("username", "password_hash", "person", "tokens")
_TOKEN_FIELDS = ("id", "hash", "created")
_USERNAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A self-describing scrypt hash: ``scrypt$N$r$p$<salt base64>$<hash base64>`` (16-byte salt, 32-byte hash)."""
    if not password:
        raise ConfigError("the password is empty; choose one")
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(dk)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    m = _HASH.fullmatch(encoded or "")
    if not m:
        return None
    n, r, p = (int(x) for x in m.group(1, 2, 3))
    if n < 2 or n & (n - 1) or not (1 <= r <= 64 and 1 <= p <= 16) or 128 * r * n > _MAXMEM:
        return None
    try:
        salt, dk = base64.b64decode(m.group(4), validate=True), base64.b64decode(m.group(5), validate=True)
    except ValueError:
        return None
    return (n, r, p, salt, dk) if salt and len(dk) >= 16 else None


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches a hash made by hash_password (constant-time comparison); False otherwise."""
    parsed = _parse_hash(encoded)
    if parsed is None or password is None:
        return False
    n, r, p, salt, dk = parsed
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(dk))
    return hmac.compare_digest(got, dk)


# ------------------------------------------------------------------------------------------ API tokens
#
# A token is `ac_<id>_<secret>`: an 8-hex-digit id (shown by `users list`, named by `--revoke`) and 32 random
# bytes. The users file keeps only `sha256$<hex digest of the whole token>`: with 256 random bits a
# stolen hash cannot be brute-forced, so a fast hash is enough, and checking one costs microseconds on
# every API and MCP call (scrypt's 0.1 s per call would be the whole latency budget).
_TOKEN = re.compile(r"ac_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_TOKEN_ID = re.compile(r"[0-9a-f]{8}")
_TOKEN_HASH = re.compile(r"sha256\$[0-9a-f]{64}")


def token_hash(token: str) -> str:
    """The stored form of an API token: ``sha256$<hex digest>``."""
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token: str | None) -> str | None:
    """The id of a well-formed API token (``ac_<id>_<secret>``), else None."""
    m = _TOKEN.fullmatch(token or "")
    return m.group(1) if m else None


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    person: str | None = None  # the people-profile name or email whose groups apply; None = public passages only
    tokens: tuple[dict, ...] = ()  # API tokens: {id, hash, created}; only their hashes are stored

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v is not None and k != "tokens"}
        if self.tokens:
            d["tokens"] = [dict(t) for t in self.tokens]
        return d


def _fix(path: Path) -> str:
    return f"fix it or recreate it with `askcolleague users add USERNAME --users-file {path}`"


def load_users(path: str | Path, _editing: str | None = None) -> dict[str, User]:
    """The users of a users file (YAML or JSON: a list of {username, password_hash, person}), by username.

    Raises ConfigError naming the file and the fix when it is missing, unreadable or malformed.
    (`_editing`: for add_user, which may start from an empty file and replaces that user's hash.)
    """
    path = Path(path)
    try:
        raw = safeyaml.load(path.read_text(encoding="utf-8"), f"users file {path}")  # no YAML aliases
    except FileNotFoundError:
        raise ConfigError(f"users file {path} does not exist; create it with `askcolleague users add USERNAME "
                          f"--users-file {path}` or unset ASKCOLLEAGUE_USERS_FILE") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"users file {path} cannot be read ({e}); check its permissions") from None
    except safeyaml.YamlRefused as e:
        raise ConfigError(str(e)) from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"users file {path} is not valid YAML or JSON{line}; {_fix(path)}") from None
    if isinstance(raw, dict) and set(raw) == {"users"}:
        raw = raw["users"]
    if _editing is not None and raw in (None, []):
        return {}
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"users file {path} must be a non-empty list of {{username, password_hash, person}} "
                          f"entries; {_fix(path)}")
    users: dict[str, User] = {}
    seen: set[str] = set()  # token ids
    for i, entry in enumerate(raw, 1):
        where = f"users file {path}, entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a mapping of username, password_hash, person; {_fix(path)}")
        unknown = sorted(set(map(str, entry)) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{where} has unknown key {unknown[0]!r} (allowed: {', '.join(_FIELDS)}); {_fix(path)}")
        name = entry.get("username")
        if not isinstance(name, str) or not _USERNAME.fullmatch(name):
            raise ConfigError(f"{where}: username must be 1-64 characters without spaces; {_fix(path)}")
        where = f"users file {path}, user {name!r}"
        if name in users:
            raise ConfigError(f"{where} appears twice; remove one entry")
        if _parse_hash(entry.get("password_hash")) is None and name != _editing:
            raise ConfigError(f"{where}: password_hash is not a scrypt$N$r$p$salt$hash string; "
                              f"set it with `askcolleague users add {name} --replace --users-file {path}`")
        person = entry.get("person")
        if person is not None and (not isinstance(person, str) or not person.strip()):
            raise ConfigError(f"{where}: person must be a name or email from the people profiles, or left out")
        users[name] = User(name, str(entry.get("password_hash") or ""), person.strip() if person else None,
                           _tokens(entry.get("tokens"), where, name, path, seen))
    return users


def _tokens(raw, where: str, name: str, path: Path, seen: set[str]) -> tuple[dict, ...]:
    """A user's API token entries, checked: each {id, hash, created}, ids unique in the file."""
    if raw is None:
        return ()
    fix = f"fix the file, or revoke the token with `askcolleague users token {name} --revoke ID --users-file {path}`"
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: tokens must be a list of {{id, hash, created}} entries; {fix}")
    out = []
    for t in raw:
        if not isinstance(t, dict) or sorted(map(str, t)) != sorted(_TOKEN_FIELDS):
            raise ConfigError(f"{where}: each token must have exactly id, hash and created; {fix}")
        if not (isinstance(t["id"], str) and _TOKEN_ID.fullmatch(t["id"])):
            raise ConfigError(f"{where}: token id {t['id']!r} is not 8 hex digits; {fix}")
        if not (isinstance(t["hash"], str) and _TOKEN_HASH.fullmatch(t["hash"])):
            raise ConfigError(f"{where}: token {t['id']}: hash is not a sha256$<64 hex digits> string; {fix}")
        if t["id"] in seen:
            raise ConfigError(f"{where}: token id {t['id']} appears twice in the file; {fix}")
        seen.add(t["id"])
        out.append({"id": t["id"], "hash": t["hash"], "created": str(t["created"])})
    return tuple(out)


def save_users(path: str | Path, users: list[User]) -> None:
    """Write a users file atomically, readable by its owner only (JSON for a `.json` name, else YAML)."""
    path = Path(path)
    rows = [u.to_dict() for u in users]
    text = (json.dumps(rows, indent=2, ensure_ascii=False) + "\n" if path.suffix.lower() == ".json"
            else yaml.safe_dump(rows, sort_keys=False, allow_unicode=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_user(path: str | Path, username: str, password: str, person: str | None = None,
             replace: bool = False) -> User:
    """Add a user to a users file (created if missing); `replace` changes an existing user. Returns the user."""
    path = Path(path)
    if not _USERNAME.fullmatch(username or ""):
        raise ConfigError(f"username {username!r} must be 1-64 characters without spaces")
    users = load_users(path, _editing=username) if path.exists() else {}
    if username in users and not replace:
        raise ConfigError(f"user {username!r} already exists in {path}; pass --replace to change their password "
                          "and person")
    old = users.get(username)  # a changed password keeps the user's API tokens (revoke them with --revoke)
    user = User(username, hash_password(password), (person or "").strip() or None, old.tokens if old else ())
    users[username] = user
    save_users(path, list(users.values()))
    return user


def remove_user(path: str | Path, username: str) -> None:
    """Remove a user from a users file (their next request is refused, even in an open session)."""
    users = load_users(path)
    if username not in users:
        raise ConfigError(f"no user {username!r} in {path}; see `askcolleague users list`")
    del users[username]
    if not users:
        raise ConfigError(f"{username!r} is the last user of {path}; delete the file or unset "
                          "ASKCOLLEAGUE_USERS_FILE to turn login off")
    save_users(path, list(users.values()))


def create_token(path: str | Path, username: str) -> tuple[str, str]:
    """Add a new API token to a user of a users file: returns (its id, the token). Only its hash is stored;
    the token itself cannot be shown again."""
    users = load_users(path)
    if username not in users:
        raise ConfigError(f"no user {username!r} in {path}; add them first with `askcolleague users add {username}`")
    ids = {t["id"] for u in users.values() for t in u.tokens}
    tid = secrets.token_hex(4)
    while tid in ids:
        tid = secrets.token_hex(4)
    token = f"ac_{tid}_{secrets.token_urlsafe(32)}"
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    u = users[username]
    users[username] = User(u.username, u.password_hash, u.person,
                           u.tokens + ({"id": tid, "hash": token_hash(token), "created": created},))
    save_users(path, list(users.values()))
    return tid, token


def revoke_token(path: str | Path, username: str, tid: str) -> None:
    """Remove the API token `tid` of a user (a running server refuses it from its next request on)."""
    users = load_users(path)
    u = users.get(username)
    if u is None:
        raise ConfigError(f"no user {username!r} in {path}; see `askcolleague users list`")
    if not any(t["id"] == tid for t in u.tokens):
        raise ConfigError(f"user {username!r} has no token {tid!r}; see `askcolleague users list` for token ids")
    users[username] = User(u.username, u.password_hash, u.person, tuple(t for t in u.tokens if t["id"] != tid))
    save_users(path, list(users.values()))


def _log(msg: str) -> None:
    print(f"askcolleague: {msg}", file=sys.stderr, flush=True)


GRACE_SECONDS = 5.0  # default of the users_file_grace_seconds setting


class Users:
    """The users file as a login check for the web app; re-read when the file changes (no restart needed).

    Fail closed: when the file goes missing or stops parsing while serving, the problem is logged at
    once (one line naming the file) and, after a grace period of `grace_seconds` from when the change
    was first seen (the moment an editor takes to save), every login and request is refused with a
    LoginError until the file is fixed; during the grace period the last good version is used.
    `error` says what is wrong (None when the file is good).
    """

    _DUMMY = None  # a hash to check unknown usernames against, so they take as long as known ones

    def __init__(self, path: str | Path, grace_seconds: float = GRACE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = _log) -> None:
        self.path = Path(path)
        self.grace, self.clock, self.log = float(grace_seconds), clock, log
        self._lock = threading.Lock()
        self._users = load_users(self.path)
        self._stamp = self._stat()
        self.error: str | None = None
        self._bad_since: float | None = None
        self._by_token: tuple[dict | None, dict] = (None, {})  # (the users it was built from, id -> (username, hash))
        if Users._DUMMY is None:
            Users._DUMMY = hash_password(secrets.token_hex(8))

    def _stat(self) -> tuple | None:
        try:
            st = self.path.stat()
            return st.st_mtime_ns, st.st_size, st.st_ino
        except OSError:
            return None

    def _refresh(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                users = load_users(self.path)
            except ConfigError as e:
                if self.error is None:
                    self._bad_since = self.clock()
                self.error = str(e)
                self.log(f"{e}; every login and request is refused until it is fixed"
                         + (f" (the last good version stays in use for {self.grace:g} s)" if self.grace > 0 else ""))
            else:
                if self.error is not None:
                    self.log(f"users file {self.path} is good again: {len(users)} user(s)")
                self._users, self.error, self._bad_since = users, None, None
            self._stamp = stamp

    def unavailable(self) -> str | None:
        """Why logins and requests are refused now (a message for the user), or None when they are not."""
        self._refresh()
        if self.error is None or self._bad_since is None or self.clock() - self._bad_since < self.grace:
            return None
        return ("logins are refused: the server's users file is missing or broken; ask the administrator "
                "(the server log says what is wrong)")

    def _fresh(self) -> dict[str, User]:
        problem = self.unavailable()
        if problem:
            raise LoginError(problem)
        return self._users

    def get(self, username: str | None) -> User | None:
        """The user (as the file says now), or None. Raises LoginError while the file is unusable."""
        return self._fresh().get(username or "")

    def check(self, username: str, password: str) -> bool:
        """Gradio's `auth` callable: does this username/password pair log in? (LoginError: see get.)"""
        user = self.get(username)
        ok = verify_password(password, user.password_hash if user else Users._DUMMY)
        return ok and user is not None

    def check_token(self, token: str | None) -> User | None:
        """The user an API token belongs to (as the file says now), or None for a malformed, unknown or
        revoked token. Raises LoginError while the file is unusable (see get)."""
        users = self._fresh()
        tid = token_id(token)
        if tid is None:
            return None
        if self._by_token[0] is not users:
            self._by_token = (users, {t["id"]: (u.username, t["hash"]) for u in users.values() for t in u.tokens})
        found = self._by_token[1].get(tid)
        if found is None:
            return None
        ok = hmac.compare_digest(token_hash(token).encode(), found[1].encode())
        return users.get(found[0]) if ok else None

    def __len__(self) -> int:
        return len(self._fresh())

    def __iter__(self):
        return iter(list(self._fresh().values()))
