"""The PostgreSQL + pgvector backend: an index in a database many app servers share.

An index location is a libpq URI, ``postgresql://user@host:port/dbname`` (``?schema=NAME`` picks the
index's schema, default ``askcolleague``, so one database can hold several indexes; it is removed
before connecting). Passwords come from the URI, ``PGPASSWORD`` or ``~/.pgpass`` and are never shown.

Layout, in the index's schema ``S``::

    S.askc_meta        schema_version, current (the live version's name), forgotten
    S.askc_versions    one row per version: building | live | retired, its manifest
    S.askc_feedback    feedback from every app server
    S_<version>        one schema per version, written by one build:
      sources, docs, people, chunk_people   as in the folder's store.sqlite
      chunks            the rows + groups text[] + a halfvec embedding (HNSW, inner product) + dl
      postings          (term, chunk, freq, impact): BM25 over FTS5's own porter/unicode61 terms

A build writes a new version schema and publishes it by switching ``current`` in one transaction;
serving processes follow it at their next request. A killed build leaves its version ``building``;
the next build (holding the index's advisory lock) drops it. The previous version is kept until the
one after, so a request in flight on it finishes.

Retrieval runs in SQL, filtered before ranking: the filters and the asker's groups are a WHERE clause
(a `PgSelection`) in the same query as the distance. Small visible sets are searched exactly (the
filter's indexes + exact distance); large ones through HNSW with ``hnsw.iterative_scan``, so a filter
never leaves fewer than k results when k are visible. Scores are exact inner products of the stored
(half precision) vectors with the float32 question. BM25 is computed from the postings with FTS5's
formula, the same scores as the folder backend's, with idf and avgdl over the visible chunks when an
asker may not see every chunk.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from ..embed import Embedder
from ..errors import ConfigError, DiskFullError, IndexFormatError, IndexLockedError, IndexNotFoundError
from ..models import Chunk, Person, normalize_name, role_of
from ..settings import Settings
from . import bm25 as _bm25
from .folder import FORMAT, FORMAT_VERSION, IndexModel, check_open_model

SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "askcolleague"
EXACT_MAX = 20_000  # visible sets up to this many chunks are searched exactly; larger ones through HNSW
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,38}$")


class _Driver:
    """psycopg 3 and pgvector's adapters, imported on first use (the `postgres` extra)."""

    def __init__(self) -> None:
        try:
            import psycopg
            from pgvector import HalfVector
            from pgvector.psycopg import register_vector
            from psycopg.types.json import Jsonb
        except ImportError:
            raise ConfigError("a postgresql:// index needs the PostgreSQL driver: "
                              "pip install 'askcolleague[postgres]'") from None
        self.psycopg, self.register_vector, self.Jsonb, self.HalfVector = psycopg, register_vector, Jsonb, HalfVector


_DRIVER: _Driver | None = None


def _driver() -> _Driver:
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = _Driver()
    return _DRIVER


# -- locations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    uri: str  # as given
    conninfo: str  # what libpq is given (the URI without ?schema= and ?shards=)
    schema: str
    shards: tuple[str, ...] = ()  # foreign servers (postgres_fdw) that hold the chunks, for a sharded build

    def __str__(self) -> str:
        return self.uri

    @property
    def shown(self) -> str:
        """The URI without its password, for messages and manifests."""
        u = urlsplit(self.uri)
        if not u.password:
            return self.uri
        netloc = u.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit((u.scheme, f"{user}:***@{netloc[1]}", u.path, u.query, u.fragment))

    @classmethod
    def parse(cls, loc: "str | Location") -> "Location":
        if isinstance(loc, Location):
            return loc
        uri = str(loc)
        u = urlsplit(uri)
        query = parse_qsl(u.query, keep_blank_values=True)
        schemas = [v for k, v in query if k == "schema"]
        schema = (schemas[-1] if schemas else DEFAULT_SCHEMA).lower()
        if not _NAME.match(schema):
            raise ConfigError(f"{uri.split('?', 1)[0]}: schema {schema!r} is not a valid name; use lower-case letters, "
                              "digits and _ (at most 39), e.g. ?schema=kb_sales")
        shards = tuple(x.strip().lower() for v in (v for k, v in query if k == "shards") for x in v.split(",") if x.strip())
        bad = [x for x in shards if not _NAME.match(x)]
        if bad or len(set(shards)) != len(shards):
            raise ConfigError(f"{uri.split('?', 1)[0]}: ?shards= names the coordinator's postgres_fdw servers, once "
                              f"each (lower-case letters, digits, _): not {(bad or list(shards))[0]!r}")
        rest = urlencode([(k, v) for k, v in query if k not in ("schema", "shards")])
        return cls(uri, urlunsplit((u.scheme, u.netloc, u.path, rest, u.fragment)), schema, shards)


def _q(name: str) -> str:
    """A schema-qualified identifier from our own validated names (never user text beyond _NAME)."""
    assert re.match(r"^[a-z_][a-z0-9_.]*$", name), name
    return name


# -- connections -----------------------------------------------------------------------------
class _Pool:
    """Idle connections to one server, reused across requests and threads (autocommit)."""

    def __init__(self, loc: Location) -> None:
        self.loc = loc
        self._idle: list = []
        self._bare: set[int] = set()  # connections opened before the vector extension existed
        self._lock = threading.Lock()

    def _connect(self):
        psycopg = _driver().psycopg
        try:
            conn = psycopg.connect(self.loc.conninfo, autocommit=True, connect_timeout=10,
                                   application_name="askcolleague")
        except psycopg.OperationalError as e:
            first = (str(e).strip().splitlines() or ["?"])[0]
            raise IndexNotFoundError(
                f"{self.loc.shown}: cannot connect ({first}); check the URI, that the server runs, and the password "
                "(in the URI, PGPASSWORD or ~/.pgpass)") from None
        self._register(conn)
        return conn

    def _register(self, conn) -> None:
        """The pgvector types (numpy arrays as `vector`); in a database without the extension yet they
        are registered once a build has created it."""
        d = _driver()
        try:
            d.register_vector(conn)
            self._bare.discard(id(conn))
        except d.psycopg.ProgrammingError:  # no vector type yet: a new database
            self._bare.add(id(conn))

    @contextmanager
    def conn(self):
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._connect()
        elif id(conn) in self._bare:
            self._register(conn)
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and not conn.closed and conn.info.transaction_status == 0:  # idle: reuse
                with self._lock:
                    if len(self._idle) < 16:
                        self._idle.append(conn)
                        conn = None
            if conn is not None:
                self._bare.discard(id(conn))
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


_POOLS: dict[tuple[str, str], _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(loc: Location) -> _Pool:
    key = (loc.conninfo, loc.schema)
    with _POOLS_LOCK:
        p = _POOLS.get(key)
        if p is None:
            p = _POOLS[key] = _Pool(loc)
        return p


def _base_exists(conn, schema: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.askc_meta",)).fetchone()[0]


def _meta(conn, schema: str, key: str, default=None):
    row = conn.execute(f"SELECT value FROM {_q(schema)}.askc_meta WHERE key = %s", (key,)).fetchone()
    return row[0] if row else default


def _check_schema_version(conn, loc: Location) -> None:
    v = _meta(conn, loc.schema, "schema_version")
    if v != SCHEMA_VERSION:
        raise IndexFormatError(
            f"{loc.shown}: schema {loc.schema} has askcolleague schema version {v}, this version reads "
            f"{SCHEMA_VERSION}; build into another schema (?schema=NAME) or rebuild with a matching askcolleague")


def _ensure_base(conn, loc: Location) -> None:
    """Create the extension and the index's schema and tables if they are missing (idempotent)."""
    s = _q(loc.schema)
    psycopg = _driver().psycopg
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"askcolleague-ddl:{loc.schema}",))
        try:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as e:
            first = (str(e).strip().splitlines() or ["?"])[0]
            raise ConfigError(f"{loc.shown}: the pgvector extension is not installed in this database ({first}); "
                              "install pgvector on the server and run CREATE EXTENSION vector as its owner") from None
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.askc_meta(key text PRIMARY KEY, value jsonb NOT NULL)")
        conn.execute(f"""CREATE TABLE IF NOT EXISTS {s}.askc_versions(
            name text PRIMARY KEY, state text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
            created_at timestamptz NOT NULL DEFAULT now(), manifest jsonb, shards text[] NOT NULL DEFAULT '{{}}')""")
        conn.execute(f"ALTER TABLE {s}.askc_versions ADD COLUMN IF NOT EXISTS shards text[] NOT NULL DEFAULT '{{}}'")
        conn.execute(f"""CREATE TABLE IF NOT EXISTS {s}.askc_feedback(
            id bigserial PRIMARY KEY, created_at text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('up', 'down', 'wrong_source')), question text NOT NULL, query text,
            answer text NOT NULL, chunk_ids jsonb NOT NULL, chunk_id text, comment text, index_version text)""")
        conn.execute(f"INSERT INTO {s}.askc_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING",
                     (json.dumps(SCHEMA_VERSION),))
    _check_schema_version(conn, loc)
    _pool(loc)._register(conn)


def _live(conn, loc: Location) -> tuple[str, dict] | None:
    """(name, manifest) of the live version, or None."""
    if not _base_exists(conn, loc.schema):
        return None
    _check_schema_version(conn, loc)
    row = conn.execute(f"SELECT v.name, v.manifest FROM {_q(loc.schema)}.askc_meta m "
                       f"JOIN {_q(loc.schema)}.askc_versions v ON v.name = m.value #>> '{{}}' "
                       "WHERE m.key = 'current'").fetchone()
    return (row[0], row[1]) if row else None


def _shard_conninfo(c, loc: Location, server: str) -> str:
    """A direct connection to a shard, from the coordinator's own postgres_fdw server and user mapping
    (the build creates each version's tables and indexes there; queries go through the coordinator)."""
    psycopg = _driver().psycopg
    row = c.execute("SELECT s.srvoptions, w.fdwname FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w "
                    "ON w.oid = s.srvfdw WHERE s.srvname = %s", [server]).fetchone()
    fix = (f"on the coordinator: CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '…', "
           f"dbname '…', extensions 'vector'); CREATE USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS (user '…')")
    if row is None or row[1] != "postgres_fdw":
        raise ConfigError(f"{loc.shown}: no postgres_fdw server {server!r} for a shard; {fix}")
    opts = dict(o.split("=", 1) for o in row[0] or [])
    if "vector" not in [x.strip() for x in opts.get("extensions", "").split(",")]:
        raise ConfigError(f"{loc.shown}: shard server {server!r} lacks OPTIONS (extensions 'vector'), so distances "
                          f"could not run on the shard; ALTER SERVER {server} OPTIONS (ADD extensions 'vector')")
    um = c.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = %s AND usename IN (current_user, 'public') "
                   "ORDER BY usename = 'public'", [server]).fetchone()
    if um is None:
        raise ConfigError(f"{loc.shown}: no user mapping for shard server {server!r}; {fix}")
    opts.update(dict(o.split("=", 1) for o in um[0] or []))
    keep = {k: v for k, v in opts.items() if k in ("host", "hostaddr", "port", "dbname", "user", "password",
                                                     "sslmode", "sslrootcert", "passfile")}
    return psycopg.conninfo.make_conninfo(**keep)


def _connect_shard(c, loc: Location, server: str):
    psycopg = _driver().psycopg
    try:
        conn = psycopg.connect(_shard_conninfo(c, loc, server), autocommit=True, connect_timeout=10,
                               application_name="askcolleague")
    except psycopg.OperationalError as e:
        first = (str(e).strip().splitlines() or ["?"])[0]
        raise IndexNotFoundError(f"{loc.shown}: cannot connect to shard {server} ({first}); check its server "
                                 "options and user mapping on the coordinator") from None
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return conn


def _require_live(conn, loc: Location) -> tuple[str, dict]:
    """(name, manifest) of the live version; IndexNotFoundError says how to build one."""
    live = _live(conn, loc)
    if live is None:
        raise _not_found(loc)
    return live


def _version_schema(loc: Location, name: str) -> str:
    return _q(f"{loc.schema}_{name}")


def _not_found(loc: Location) -> IndexNotFoundError:
    return IndexNotFoundError(f"{loc.shown}: no index here; build one with "
                              f"`askcolleague index build SOURCES --index {loc.shown}`")


# -- selections ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PgSelection:
    """A filter as an SQL condition on ``chunks c`` and its arguments (index/base.py `Selection`)."""
    where: str
    args: tuple = ()
    empty: bool = False


def _visible_sql(groups: list[str], alias: str = "c") -> tuple[str, list]:
    """A chunk without groups is visible to everyone; otherwise the asker needs one of its groups."""
    return f"({alias}.groups = '{{}}' OR {alias}.groups && %s::text[])", [list(groups)]


# -- the chunk store -------------------------------------------------------------------------
_CHUNK_COLS = ("id, chunk_id, doc_id, source, position, text, embed_text, title, section, source_type, date, url, "
               "tags, groups, authors, unit_id, reply_to, quoted_from, n_tokens, n_tiktoken, embed_hash, role, "
               "accepted, votes")
_DOC_COLS = "doc_id, source, title, source_type, url, date, tags, groups, authors, meta"
_PERSON_COLS = ("person_id, name, email, title, team, location, expertise, bio, url, aliases, handles, groups, "
                "has_profile, source")


def _chunk_row(r: tuple) -> dict:
    d = dict(zip([c.strip() for c in _CHUNK_COLS.split(",")], r))
    d["tags"], d["groups"], d["authors"] = d["tags"] or [], list(d["groups"] or []), d["authors"] or []
    return d


def _doc_row(r: tuple) -> dict:
    d = dict(zip([c.strip() for c in _DOC_COLS.split(",")], r))
    d["tags"], d["groups"] = d["tags"] or [], list(d["groups"] or [])
    d["authors"], d["meta"] = d["authors"] or [], d["meta"] or {}
    return d


def _person(r: tuple) -> Person:
    d = dict(zip([c.strip() for c in _PERSON_COLS.split(",")], r))
    return Person(name=d["name"], email=d["email"], title=d["title"], team=d["team"], location=d["location"],
                  expertise=d["expertise"] or [], bio=d["bio"], url=d["url"], aliases=d["aliases"] or [],
                  handles=d["handles"] or {}, groups=d["groups"] or [], person_id=d["person_id"],
                  has_profile=bool(d["has_profile"]), source=d["source"])


class PgStore:
    """The chunk store of one version (index/base.py `ChunkStore`), read through the pool."""

    def __init__(self, pool: _Pool, vschema: str) -> None:
        self.pool, self.v = pool, vschema
        self._people: list[Person] | None = None

    def _all(self, sql: str, args: Iterable = ()) -> list[tuple]:
        with self.pool.conn() as c:
            return c.execute(sql.replace("{v}", self.v), list(args)).fetchall()

    def close(self) -> None:
        pass

    def count(self, table: str) -> int:
        assert table in ("sources", "docs", "chunks", "people", "chunk_people")
        return self._all(f"SELECT count(*) FROM {{v}}.{table}")[0][0]

    def sources(self) -> list[dict]:
        cols = ("key", "path", "kind", "hash", "size", "n_docs", "n_chunks", "status", "error")
        return [dict(zip(cols, r)) for r in self._all(f"SELECT {', '.join(cols)} FROM {{v}}.sources ORDER BY key")]

    def chunk_rows(self, ids: Iterable[int] | None = None) -> list[dict]:
        if ids is None:
            return [_chunk_row(r) for r in self._all(f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks ORDER BY id")]
        ids = [int(i) for i in ids]
        got = {r[0]: _chunk_row(r) for r in self._all(f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks WHERE id = ANY(%s)", [ids])}
        return [got[i] for i in ids if i in got]

    def chunks_of_source(self, key: str) -> list[dict]:
        return [_chunk_row(r) for r in self._all(f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks WHERE source = %s ORDER BY id",
                                                 [key])]

    def docs_of_source(self, key: str) -> list[dict]:
        return [_doc_row(r) for r in self._all(f"SELECT {_DOC_COLS} FROM {{v}}.docs WHERE source = %s", [key])]

    def people(self) -> list[Person]:
        if self._people is None:  # (a version never changes)
            self._people = [_person(r) for r in self._all(f"SELECT {_PERSON_COLS} FROM {{v}}.people ORDER BY name")]
        return list(self._people)

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people() if p.person_id == person_id), None)

    def visible_profiles(self, person_ids: Iterable[str], groups: list[str] | None) -> set[str]:
        ids = list(dict.fromkeys(person_ids))
        if groups is None:
            return set(ids)
        cond, args = _visible_sql(groups)
        return {r[0] for r in self._all(
            "SELECT DISTINCT l.person_id FROM {v}.chunk_people l JOIN {v}.chunks c ON c.id = l.chunk "
            f"WHERE l.role = 'profile' AND l.person_id = ANY(%s) AND {cond}", [ids, *args])}

    def people_counts(self, groups: list[str] | None = None) -> dict[str, dict[str, int]]:
        vis, args = "", []
        if groups is not None:
            cond, args = _visible_sql(groups)
            vis = "AND " + cond
        out: dict[str, dict[str, int]] = {}
        for pid, st, n in self._all(
                "SELECT l.person_id, c.source_type, count(DISTINCT CASE WHEN c.source_type = 'document' THEN c.doc_id "
                "ELSE c.doc_id || '/' || coalesce(c.unit_id, '') END) FROM {v}.chunk_people l "
                f"JOIN {{v}}.chunks c ON c.id = l.chunk WHERE l.role = 'author' AND c.quoted_from IS NULL {vis} "
                "GROUP BY l.person_id, c.source_type", args):
            out.setdefault(pid, {})[st] = n
        return out

    def authored_rows(self, person_id: str, groups: list[str] | None = None, limit: int = 5) -> list[dict]:
        vis, args = "", []
        if groups is not None:
            cond, args = _visible_sql(groups)
            vis = "AND " + cond
        cols = ", ".join(f"c.{c.strip()}" for c in _CHUNK_COLS.split(","))
        return [_chunk_row(r) for r in self._all(
            f"SELECT {cols} FROM {{v}}.chunk_people l JOIN {{v}}.chunks c ON c.id = l.chunk WHERE l.person_id = %s "
            f"AND l.role = 'author' {vis} ORDER BY c.id LIMIT %s", [person_id, *args, limit])]

    def chunks_at(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        rows = self._all(f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks WHERE (doc_id, position) IN "
                         "(SELECT * FROM unnest(%s::text[], %s::int[]))", [[k[0] for k in keys], [k[1] for k in keys]])
        return {(r["doc_id"], r["position"]): r for r in map(_chunk_row, rows)}

    # -- selections: filters and access control, applied before any ranking --------------------
    def person_ids(self, person: str) -> list[str]:
        key = normalize_name(person)
        low = person.strip().lower()
        return [p.person_id for p in self.people()
                if (low == (p.email or "") or low in {h.lower() for h in p.handles.values()}
                    or key in {normalize_name(n) for n in [p.name, *p.aliases]} or low == p.person_id)]

    def visible(self, groups: list[str]) -> np.ndarray:
        cond, args = _visible_sql(groups)
        return np.array([r[0] for r in self._all(f"SELECT c.id FROM {{v}}.chunks c WHERE {cond}", args)], dtype=np.int64)

    def select(self, f, person_ids: list[str] | None = None) -> PgSelection | None:
        if f is None or f.is_empty():
            return None
        where, args = [], []
        if f.source_types:
            where.append("c.source_type = ANY(%s)")
            args.append(list(f.source_types))
        if f.person:
            if not person_ids:
                return PgSelection("false", (), empty=True)
            where.append(f"c.id IN (SELECT chunk FROM {self.v}.chunk_people WHERE role IN ('author', 'profile') "
                         "AND person_id = ANY(%s))")
            args.append(list(person_ids))
        if f.since:
            where.append("left(c.date, 10) >= %s")
            args.append(f.since[:10])
        if f.until:
            where.append("left(c.date, 10) <= %s")
            args.append(f.until[:10])
        if f.tags:
            where.append("c.tags_lower && %s::text[]")
            args.append([t.lower() for t in f.tags])
        if f.groups is not None:
            cond, more = _visible_sql(f.groups)
            where.append(cond)
            args += more
        return PgSelection(" AND ".join(where) or "true", tuple(args))

    def admits(self, selection: PgSelection | None, ids: Iterable[int]) -> set[int]:
        ids = {int(i) for i in ids}
        if selection is None or not ids:
            return ids
        if selection.empty:
            return set()
        return {r[0] for r in self._all(f"SELECT c.id FROM {{v}}.chunks c WHERE c.id = ANY(%s) AND {selection.where}",
                                        [list(ids), *selection.args])}

    def ids(self, selection: PgSelection | None) -> np.ndarray:
        """Every chunk id a selection admits (tests and small uses; a search never needs them)."""
        if selection is not None and selection.empty:
            return np.zeros(0, dtype=np.int64)
        where, args = (selection.where, selection.args) if selection is not None else ("true", ())
        return np.array([r[0] for r in self._all(f"SELECT c.id FROM {{v}}.chunks c WHERE {where} ORDER BY c.id", args)],
                        dtype=np.int64)

    def facets(self, groups: list[str] | None = None) -> tuple[set[str], set[str]]:
        if groups is None:
            return {r[0] for r in self._all("SELECT DISTINCT source_type FROM {v}.chunks")}, {p.name for p in self.people()}
        vis, args = _visible_sql(groups)
        present = {r[0] for r in self._all(f"SELECT DISTINCT source_type FROM {{v}}.chunks c WHERE {vis}", args)}
        names = {r[0] for r in self._all(
            "SELECT name FROM {v}.people p WHERE EXISTS (SELECT 1 FROM {v}.chunk_people cp "
            f"JOIN {{v}}.chunks c ON c.id = cp.chunk WHERE cp.person_id = p.person_id AND {vis})", args)}
        return present, names

    def visible_totals(self, groups: list[str]) -> tuple[int, int]:
        vis, args = _visible_sql(groups)
        n, d = self._all(f"SELECT count(*), count(DISTINCT c.doc_id) FROM {{v}}.chunks c WHERE {vis}", args)[0]
        return n, d

    def chunk_ids_of_person(self, person_id: str) -> list[str]:
        return [r[0] for r in self._all("SELECT c.chunk_id FROM {v}.chunk_people l JOIN {v}.chunks c ON c.id = l.chunk "
                                        "WHERE l.person_id = %s", [person_id])]

    def passage(self, chunk_id: str, groups: list[str] | None = None) -> tuple[dict, dict | None, dict[int, str]] | None:
        vis, args = _visible_sql(groups) if groups is not None else ("true", [])
        rows = self._all(f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks c WHERE c.chunk_id = %s AND {vis}", [chunk_id, *args])
        if not rows:
            return None
        row = _chunk_row(rows[0])
        d = self._all(f"SELECT {_DOC_COLS} FROM {{v}}.docs WHERE doc_id = %s", [row["doc_id"]])
        near = {p: c for p, c in self._all(
            f"SELECT c.position, c.chunk_id FROM {{v}}.chunks c WHERE c.doc_id = %s AND c.position IN (%s, %s) AND {vis}",
            [row["doc_id"], row["position"] - 1, row["position"] + 1, *args])}
        return row, (_doc_row(d[0]) if d else None), near

    def ocr_docs(self, doc_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return set()
        return {r[0] for r in self._all("SELECT doc_id FROM {v}.docs WHERE doc_id = ANY(%s) AND meta @> '{\"ocr\": true}'",
                                        [ids])}

    def doc_ids(self) -> list[str]:
        return [r[0] for r in self._all("SELECT doc_id FROM {v}.docs")]

    def mentions(self, word: str, groups: list[str] | None = None) -> bool:
        """Whether a chunk an asker in `groups` may see (None: any) holds all of `word`'s FTS5 terms."""
        terms = sorted(set(_bm25.fts5_terms([word])))
        if not terms:
            return False
        vis, args = _visible_sql(groups) if groups is not None else ("true", [])
        return bool(self._all(
            "SELECT 1 FROM {v}.postings p JOIN {v}.chunks c ON c.id = p.chunk "
            f"WHERE p.term = ANY(%s) AND {vis} GROUP BY p.chunk HAVING count(*) = %s LIMIT 1", [terms, *args, len(terms)]))

    def chunks_of_units(self, unit_ids: Iterable[str], doc_ids: Iterable[str]) -> list[dict]:
        units, docs = list(dict.fromkeys(unit_ids)), list(dict.fromkeys(doc_ids))
        if not units or not docs:
            return []
        return [_chunk_row(r) for r in self._all(
            f"SELECT {_CHUNK_COLS} FROM {{v}}.chunks WHERE unit_id = ANY(%s) AND doc_id = ANY(%s) ORDER BY id", [units, docs])]

    def links_for(self, chunk_ids: Iterable[int]) -> dict[int, list[tuple[str, str, float]]]:
        out: dict[int, list[tuple[str, str, float]]] = {}
        for c, pid, role, w in self._all("SELECT chunk, person_id, role, weight FROM {v}.chunk_people WHERE chunk = ANY(%s)",
                                         [[int(i) for i in chunk_ids]]):
            out.setdefault(c, []).append((pid, role, w))
        return out

    def iter_embed_hashes(self) -> Iterator[tuple[int, str]]:
        yield from self._all("SELECT id, embed_hash FROM {v}.chunks")


# -- vectors ---------------------------------------------------------------------------------
def _np(v) -> np.ndarray:
    """A `vector` value as loaded (pgvector's Vector, or a numpy array) as float32 numpy."""
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)


class PgVectors:
    """The vector index of one version (index/base.py `VectorIndex`): pgvector HNSW + an exact path."""

    def __init__(self, pool: _Pool, vschema: str, n: int, dim: int) -> None:
        self.pool, self.v, self.n, self.dim = pool, vschema, n, dim

    def __len__(self) -> int:
        return self.n

    def search(self, qvec: np.ndarray, k: int, allowed: PgSelection | None = None) -> list[tuple[int, float]]:
        """The k chunks nearest the question among a selection (None: all), as (id, inner product)."""
        k = min(k, self.n)
        if k <= 0 or (allowed is not None and allowed.empty):
            return []
        q = np.asarray(qvec, dtype=np.float32).reshape(-1)
        where, args = (allowed.where, list(allowed.args)) if allowed is not None else ("true", [])
        with self.pool.conn() as c:
            if allowed is None:
                small = self.n <= EXACT_MAX
            else:
                small = c.execute(f"SELECT count(*) FROM (SELECT 1 FROM {self.v}.chunks c WHERE {where} LIMIT %s) s",
                                  [*args, EXACT_MAX + 1]).fetchone()[0] <= EXACT_MAX
            if small:
                return self._exact(c, q, k, where, args)
            with c.transaction():
                c.execute(f"SET LOCAL hnsw.ef_search = {int(min(max(2 * k, 100), 1000))}")
                c.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                c.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(max(20_000, 50 * k))}")
                rows = c.execute(
                    f"SELECT s.id, -(s.embedding::vector <#> %s::vector) AS score FROM ("
                    f"SELECT c.id, c.embedding FROM {self.v}.chunks c WHERE {where} "
                    f"ORDER BY c.embedding <#> %s::vector::halfvec LIMIT %s) s", [q, *args, q, k]).fetchall()
            if len(rows) < k:  # the scan stopped early: what is visible may be fewer, or far apart
                return self._exact(c, q, k, where, args)
        return sorted(((int(i), float(s)) for i, s in rows), key=lambda t: (-t[1], t[0]))

    def _exact(self, c, q: np.ndarray, k: int, where: str, args: list) -> list[tuple[int, float]]:
        rows = c.execute(f"SELECT c.id, -(c.embedding::vector <#> %s::vector) AS score FROM {self.v}.chunks c "
                         f"WHERE {where} ORDER BY score DESC, c.id LIMIT %s", [q, *args, k]).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def get(self, i: int) -> np.ndarray:
        with self.pool.conn() as c:
            row = c.execute(f"SELECT embedding::vector FROM {self.v}.chunks WHERE id = %s", [int(i)]).fetchone()
        if row is None:
            raise KeyError(i)
        return _np(row[0])

    def cosine(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]:
        if not ids:
            return {}
        q = np.asarray(qvec, dtype=np.float32).reshape(-1)
        with self.pool.conn() as c:
            rows = c.execute(f"SELECT id, -(embedding::vector <#> %s::vector) FROM {self.v}.chunks WHERE id = ANY(%s)",
                             [q, [int(i) for i in ids]]).fetchall()
        return {int(i): float(s) for i, s in rows}

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        with self.pool.conn() as c:
            rows = c.execute(f"SELECT id, embedding::vector FROM {self.v}.chunks ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.array([_np(r[1]) for r in rows], dtype=np.float32).reshape(len(rows), self.dim)
        return ids, vecs


# -- lexical ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PgVisible:
    """What an asker may see, for BM25's statistics: their groups and the visible chunks' N and avgdl."""
    groups: tuple
    n: int
    avgdl: float


class PgLexical:
    """BM25 over the version's postings table (index/base.py `LexicalIndex`): FTS5's bm25() scores."""

    def __init__(self, pool: _Pool, vschema: str) -> None:
        self.pool, self.v = pool, vschema

    def search(self, words: list[str], depth: int, allowed: PgSelection | None = None,
               visible: PgVisible | None = None) -> list[tuple[int, float]]:
        terms = _bm25.fts5_terms(words)
        if not terms or depth <= 0 or (allowed is not None and allowed.empty):
            return []
        where, args = (allowed.where, list(allowed.args)) if allowed is not None else ("true", [])
        with self.pool.conn() as c:
            if visible is None:
                join = f"JOIN {self.v}.chunks c ON c.id = p.chunk AND {where}" if allowed is not None else ""
                rows = c.execute(
                    f"SELECT p.chunk, sum(p.impact) AS s FROM unnest(%s::text[]) AS q(term) "
                    f"JOIN {self.v}.postings p ON p.term = q.term {join} "
                    "GROUP BY p.chunk ORDER BY s DESC, p.chunk LIMIT %s", [terms, *args, depth]).fetchall()
            else:
                vis, vargs = _visible_sql(list(visible.groups))
                k1, b = _bm25.K1, _bm25.B
                rows = c.execute(
                    f"WITH m AS (SELECT q.term, p.chunk, p.freq, c.dl, ({where}) AS ok FROM unnest(%s::text[]) AS q(term) "
                    f"JOIN {self.v}.postings p ON p.term = q.term JOIN {self.v}.chunks c ON c.id = p.chunk WHERE {vis}), "
                    "d AS (SELECT term, count(DISTINCT chunk)::float8 AS df FROM m GROUP BY term) "
                    "SELECT m.chunk, sum(greatest(ln((%s - d.df + 0.5) / (d.df + 0.5)), 1e-6) * m.freq * "
                    f"{k1 + 1} / (m.freq + {k1} * (1 - {b} + {b} * m.dl / %s)))::real AS s "
                    "FROM m JOIN d USING (term) WHERE m.ok GROUP BY m.chunk ORDER BY s DESC, m.chunk LIMIT %s",
                    [*args, terms, *vargs, float(visible.n), visible.avgdl or 1.0, depth]).fetchall()
        return [(int(i), float(s)) for i, s in rows if s > 0]


# -- a loaded version ------------------------------------------------------------------------
class PgIndex(IndexModel):
    """A loaded version of a PostgreSQL index: manifest, `store`, `vectors`, `bm25`, and its model."""

    def __init__(self, loc: Location, name: str, manifest: dict, embedder: Embedder | None = None) -> None:
        self.loc, self.path, self.shown, self.version, self.manifest = loc, loc.uri, loc.shown, name, manifest
        self.pool = _pool(loc)
        self.vschema = _version_schema(loc, name)
        n = int(manifest.get("counts", {}).get("chunks", 0))
        self.store = PgStore(self.pool, self.vschema)
        self.vectors = PgVectors(self.pool, self.vschema, n, int(manifest["model"]["dim"]))
        self.bm25 = PgLexical(self.pool, self.vschema)
        self._embedder = embedder
        self._visible: dict[tuple[str, ...], PgVisible | None] = {}

    def visibility(self, groups: list[str] | None) -> PgVisible | None:
        """The asker's groups with the visible chunks' statistics (None: they see every chunk)."""
        if groups is None:
            return None
        key = tuple(sorted(set(groups)))
        if key not in self._visible:
            vis, args = _visible_sql(list(key))
            with self.pool.conn() as c:
                n, avgdl = c.execute(f"SELECT count(*), coalesce(avg(c.dl), 1) FROM {self.vschema}.chunks c WHERE {vis}",
                                     args).fetchone()
            if len(self._visible) >= 64:
                self._visible.clear()
            self._visible[key] = None if n == self.vectors.n else PgVisible(key, int(n), float(avgdl))
        return self._visible[key]

    def close(self) -> None:
        pass


# -- writing a version -----------------------------------------------------------------------
class _Published:
    def __init__(self, name: str) -> None:
        self.name = name


def _is_disk_full(e: BaseException) -> bool:
    return getattr(e, "sqlstate", None) in ("53100", "53400")  # disk_full, configuration_limit_exceeded


class PgWriter:
    """Writes one new version into its own schema (index/base.py `IndexWriter`); `publish` switches the
    index's `current` to it in one transaction.

    It streams: `begin` creates the version's schema and tables, each `add_*` call COPYs its rows at once
    (in a transaction of its own: the version is invisible until published, and `abort` or the next build
    drops it), so the memory it holds is one call's rows, whatever the corpus's size. BM25's corpus-wide
    statistics wait for `finish`: `add_chunks` tokenizes its batch with FTS5 (a chunk's length and its
    terms' frequencies depend on that chunk alone) into an unlogged staging table, and `finish` computes
    N, avgdl, each term's df and idf and the impacts in SQL — with bm25.postings's formula, in the same
    float64 operations, to the same float32 values."""

    def __init__(self, loc: Location, previous: "PgPrevious | None") -> None:
        self.loc, self.previous = loc, previous
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dt%H%M%S")
        self.name = f"v{stamp}_{uuid.uuid4().hex[:6]}"
        self.v = _version_schema(loc, self.name)
        self.lexical: dict = {}
        self._conn = None
        self._shards: dict[str, object] = {}  # server name → direct connection, for a sharded build
        self._server: dict = {}
        self._dim = 0
        self._n = 0  # chunks written (ids 0.._n-1)
        self._dl = 0.0  # the sum of their BM25 lengths (integers: exact in a float64)
        self._postings = 0  # staged postings

    def add(self, sources: list[tuple], docs: list[dict], chunks: list, keys: list[str], people: list,
            links: list[tuple[int, str, str, float]], vecs: np.ndarray, dim: int) -> None:
        """The whole version in one call: the streaming calls below, once each."""
        self.begin(dim)
        self.add_sources(sources)
        self.add_docs(docs)
        self.add_chunks(0, chunks, keys, vecs)
        self.add_people(people)
        self.add_links(links)
        self.finish()

    def _do(self, fn) -> None:
        try:
            fn()
        except BaseException as e:
            self.abort(e)

    # the streaming build's calls (index/base.py IndexWriter)
    def begin(self, dim: int) -> None:
        def run():
            self._dim, self._n, self._dl, self._postings = int(dim), 0, 0.0, 0
            self._conn = c = _pool(self.loc)._connect()
            _ensure_base(c, self.loc)
            s = _q(self.loc.schema)
            if self.loc.shards:  # (a shard that is not defined or not reachable fails before anything is written)
                c.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
                self._shards = {srv: _connect_shard(c, self.loc, srv) for srv in self.loc.shards}
            c.execute(f"INSERT INTO {s}.askc_versions(name, state, shards) VALUES (%s, 'building', %s)",
                      [self.name, list(self.loc.shards)])
            for sc in self._shards.values():  # each shard's own part of the chunks table
                sc.execute(f"CREATE SCHEMA {self.v}")
                sc.execute(_chunks_ddl(self.v, dim))
            with c.transaction():
                self._create_tables(c, dim)
                # (term, chunk, freq, dl) of each chunk's terms until `finish` knows the corpus's statistics
                c.execute(f"CREATE UNLOGGED TABLE {self.v}.postings_stage(term text NOT NULL, chunk integer NOT NULL, "
                          "freq real NOT NULL, dl real NOT NULL)")
                for table in _UPSERT:  # this session's own, emptied at each commit (see _upsert)
                    c.execute(f"CREATE TEMP TABLE askc_stage_{table} (LIKE {self.v}.{table}) ON COMMIT DELETE ROWS")
        self._do(run)

    def add_sources(self, rows: list[tuple]) -> None:
        self._do(lambda: self._upsert("sources", {r[0]: (*r, *(["ok", None] if len(r) == 7 else [])) for r in rows}))

    def add_docs(self, rows: list[dict]) -> None:
        Jsonb = _driver().Jsonb
        self._do(lambda: self._upsert("docs", {d["doc_id"]: (
            d["doc_id"], d["source"], d["title"], d["source_type"], d.get("url"), d.get("date"),
            Jsonb(d.get("tags") or []), list(d.get("groups") or []), Jsonb(d.get("authors") or []),
            Jsonb(d.get("meta") or {})) for d in rows}))

    def add_people(self, people: list) -> None:
        Jsonb = _driver().Jsonb
        self._do(lambda: self._upsert("people", {p.person_id: (
            p.person_id, p.name, p.email, p.title, p.team, p.location, Jsonb(p.expertise), p.bio, p.url,
            Jsonb(p.aliases), Jsonb(p.handles), Jsonb(p.groups), int(p.has_profile), p.source) for p in people}))

    def add_links(self, links: list) -> None:
        self._do(lambda: self._upsert("chunk_people", {tuple(r[:3]): tuple(r) for r in links}))

    def _upsert(self, table: str, rows: dict) -> None:
        """One row per key, the last given — within a call (the dict) and across calls (ON CONFLICT DO
        UPDATE), as the folder's INSERT OR REPLACE: COPY into this session's staging table, then INSERT."""
        if not rows:
            return
        cols, key = _UPSERT[table]
        c = self._conn
        sets = ", ".join(f"{x} = excluded.{x}" for x in (y.strip() for y in cols.split(","))
                         if x not in [k.strip() for k in key.split(",")])
        with c.transaction():
            with c.cursor().copy(f"COPY askc_stage_{table} ({cols}) FROM STDIN") as cp:
                for r in rows.values():
                    cp.write_row(r)
            c.execute(f"INSERT INTO {self.v}.{table} ({cols}) SELECT {cols} FROM askc_stage_{table} "
                      f"ON CONFLICT ({key}) DO UPDATE SET {sets}")

    def add_chunks(self, first: int, chunks: list, keys: list[str], vecs: np.ndarray) -> None:
        """Chunks `first`, `first + 1`, … with their embed keys and vectors (ids follow on from the last
        call): their rows, with their BM25 lengths, and their postings' frequencies, staged."""
        def run():
            vv = np.asarray(vecs, dtype=np.float32)
            if first != self._n or len(keys) != len(chunks) or vv.size != len(chunks) * self._dim:
                raise ValueError(f"chunks from id {first} ({len(chunks)} with {len(keys)} keys and {len(vv)} vectors); "
                                 f"expected id {self._n}")
            if not chunks:
                return
            vv = vv.reshape(len(chunks), self._dim)
            arrays = _batch_postings(chunks)[0]
            self._copy_chunks(first, chunks, keys, vv, arrays)
            self._n += len(chunks)
            self._dl += float(arrays["lengths"].astype(np.float64).sum())
            self._postings += len(arrays["docs"])
        self._do(run)

    def _copy_chunks(self, first: int, chunks: list, keys: list[str], vecs: np.ndarray, arrays: dict) -> None:
        Jsonb = _driver().Jsonb
        c, v = self._conn, self.v
        dl = arrays["lengths"]
        with c.transaction():
            with c.cursor().copy(f"COPY {v}.chunks ({_CHUNK_COLS}, tags_lower, dl, embedding) FROM STDIN") as cp:
                for j, ch in enumerate(chunks):
                    cp.write_row((first + j, ch.chunk_id, ch.doc_id, ch.source, ch.position, ch.text, ch.embed_text,
                                  ch.title, ch.section, ch.source_type, ch.date, ch.url, Jsonb(ch.tags),
                                  list(ch.groups), Jsonb([asdict(a) for a in ch.authors]), ch.unit_id, ch.reply_to,
                                  ch.quoted_from, ch.n_tokens, ch.n_tiktoken, keys[j], role_of(ch.source_type, ch.role),
                                  None if ch.accepted is None else int(ch.accepted), ch.votes,
                                  [t.lower() for t in ch.tags], float(dl[j]), _vector_text(vecs[j])))
            terms, offsets = arrays["terms"], arrays["offsets"]
            docs = arrays["docs"]
            ids, freqs, dls = (docs.astype(np.int64) + first).tolist(), arrays["freqs"].tolist(), dl[docs].tolist()
            with c.cursor().copy(f"COPY {v}.postings_stage FROM STDIN") as cp:  # (COPY's text format, in blocks)
                block: list[str] = []
                for t, term in enumerate(terms):
                    esc = term.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
                    block.extend(f"{esc}\t{ids[j]}\t{freqs[j]!r}\t{dls[j]!r}\n"
                                 for j in range(int(offsets[t]), int(offsets[t + 1])))
                    if len(block) >= 50_000:
                        cp.write("".join(block))
                        block = []
                cp.write("".join(block))

    def finish(self) -> None:
        """The postings' impacts from the corpus's statistics (bm25.postings's formula, in SQL), the
        indexes, ANALYZE, and the lexical part of the manifest."""
        def run():
            c, v = self._conn, self.v
            n = self._n
            avgdl = self._dl / n if n else 1.0
            k1, b = _bm25.K1, _bm25.B
            with c.transaction():
                # idf = ln((N - df + 0.5) / (df + 0.5)), at least 1e-6 (idf <= 0 → 1e-6, as FTS5)
                c.execute("CREATE TEMP TABLE askc_idf ON COMMIT DROP AS SELECT term, CASE WHEN x <= 0 THEN "
                          "1e-6::float8 ELSE x END AS idf FROM (SELECT term, ln((%s::float8 - count(*)::float8 + "
                          f"0.5::float8) / (count(*)::float8 + 0.5::float8)) AS x FROM {v}.postings_stage "
                          "GROUP BY term) q", [float(n)])
                terms = c.execute("SELECT count(*) FROM askc_idf").fetchone()[0]
                # impact = idf * (f * (k1 + 1)) / (f + k1 * (1 - b + b * dl / avgdl)), in float64 as numpy
                # evaluates it, stored as float32; term-major (as FTS5 orders its terms), then by chunk
                c.execute(f"INSERT INTO {v}.postings (term, chunk, freq, impact) SELECT s.term, s.chunk, s.freq, "
                          "(i.idf * (s.freq::float8 * %(k1p1)s::float8) / (s.freq::float8 + %(k1)s::float8 * "
                          "(1::float8 - %(b)s::float8 + %(b)s::float8 * s.dl::float8 / %(avgdl)s::float8)))::real "
                          f"FROM {v}.postings_stage s JOIN askc_idf i USING (term) "
                          'ORDER BY s.term COLLATE "C", s.chunk',
                          {"k1p1": k1 + 1, "k1": k1, "b": b, "avgdl": avgdl or 1.0})
                c.execute(f"DROP TABLE {v}.postings_stage")
            with c.transaction():
                self._create_indexes(c)
            for sc in self._shards.values():
                for sql in _chunk_indexes(self.v):
                    sc.execute(sql)
                sc.execute(f"ANALYZE {self.v}.chunks")
            c.execute(f"ANALYZE {v}.chunks")
            c.execute(f"ANALYZE {v}.postings")
            c.execute(f"ANALYZE {v}.chunk_people")
            self._server = {"server_version": c.info.server_version,
                            "pgvector": c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]}
            meta = _batch_postings([])[1]  # (the parameters, as bm25.postings states them)
            meta.update(rows=n, terms=int(terms), postings=self._postings, avgdl=avgdl)
            self.lexical = meta
        self._do(run)

    def interrupt(self) -> None:
        """Stop the SQL statement under way (from another thread: the build's, on Ctrl-C or an error)."""
        c = self._conn
        if c is not None:
            try:
                (getattr(c, "cancel_safe", None) or c.cancel)()  # (cancel_safe: psycopg 3.2)
            except Exception:
                pass

    def _create_tables(self, c, dim: int) -> None:
        v = self.v
        c.execute(f"CREATE SCHEMA {v}")
        c.execute(f"""CREATE TABLE {v}.sources(
            key text PRIMARY KEY, path text NOT NULL, kind text NOT NULL, hash text NOT NULL, size bigint, n_docs int,
            n_chunks int, status text NOT NULL DEFAULT 'ok', error text)""")
        c.execute(f"""CREATE TABLE {v}.docs(
            doc_id text PRIMARY KEY, source text NOT NULL, title text, source_type text, url text, date text,
            tags jsonb, groups text[] NOT NULL, authors jsonb, meta jsonb)""")
        if not self.loc.shards:
            c.execute(_chunks_ddl(v, dim))
        else:  # hash-partitioned by id onto the shards' tables, through postgres_fdw
            n = len(self.loc.shards)
            c.execute(_chunks_ddl(v, dim, partitioned=True))
            for i, srv in enumerate(self.loc.shards):
                c.execute(f"CREATE FOREIGN TABLE {v}.chunks_{i} PARTITION OF {v}.chunks FOR VALUES WITH (MODULUS {n}, "
                          f"REMAINDER {i}) SERVER {_q(srv)} OPTIONS (schema_name '{v}', table_name 'chunks', "
                          "fetch_size '100', batch_size '1000')")
        c.execute(f"""CREATE TABLE {v}.people(
            person_id text PRIMARY KEY, name text NOT NULL, email text, title text, team text, location text,
            expertise jsonb, bio text, url text, aliases jsonb, handles jsonb, groups jsonb, has_profile smallint,
            source text)""")
        c.execute(f"""CREATE TABLE {v}.chunk_people(
            chunk integer NOT NULL, person_id text NOT NULL, role text NOT NULL, weight real NOT NULL,
            PRIMARY KEY (chunk, person_id, role))""")
        c.execute(f"CREATE TABLE {v}.postings(term text NOT NULL, chunk integer NOT NULL, freq real NOT NULL, "
                  "impact real NOT NULL)")

    def _create_indexes(self, c) -> None:
        v = self.v
        for sql in (f"CREATE INDEX ON {v}.docs (source)", f"CREATE INDEX ON {v}.chunk_people (person_id)",
                    f"CREATE INDEX ON {v}.postings (term) INCLUDE (chunk, freq, impact)",
                    *(_chunk_indexes(v) if not self.loc.shards else ())):  # (a shard indexes its own part)
            c.execute(sql)

    def describe(self) -> dict:
        shards = {"shards": [{"server": s, "table": f"{self.v}.chunks_{i}", "partition": f"hash(id) % "
                              f"{len(self.loc.shards)} = {i}"} for i, s in enumerate(self.loc.shards)]}
        return {**(shards if self.loc.shards else {}), "vectors": {"table": f"{self.v}.chunks", "column": "embedding halfvec", "metric": "inner product",
                            "normalized": True, "index": f"hnsw (halfvec_ip_ops, m {HNSW_M}, ef_construction "
                            f"{HNSW_EF_CONSTRUCTION}); exact up to {EXACT_MAX} visible chunks", "ids": "chunks.id"},
                "store": {"engine": "postgresql", "schema": self.v, **self._server},
                "lexical": {"table": f"{self.v}.postings", "scoring": "FTS5 bm25()", **self.lexical}}

    def publish(self, manifest: dict) -> _Published:
        Jsonb = _driver().Jsonb
        s = _q(self.loc.schema)
        try:
            c = self._conn
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"askcolleague-ddl:{self.loc.schema}",))
                c.execute(f"UPDATE {s}.askc_versions SET state = 'retired' WHERE state = 'live'")
                c.execute(f"UPDATE {s}.askc_versions SET state = 'live', manifest = %s WHERE name = %s",
                          [Jsonb(manifest), self.name])
                c.execute(f"INSERT INTO {s}.askc_meta VALUES ('current', %s) ON CONFLICT (key) DO UPDATE "
                          "SET value = excluded.value", [Jsonb(self.name)])
        except BaseException as e:
            self.abort(e)
        keep = {self.name, self.previous.name if self.previous is not None else None}
        try:
            for (name,) in c.execute(f"SELECT name FROM {s}.askc_versions WHERE state = 'retired'").fetchall():
                if name not in keep:
                    _drop_version(c, self.loc, name)
        finally:
            c.close()
            self._conn = None
            self._close_shards()
        return _Published(self.name)

    def _close_shards(self) -> None:
        for sc in self._shards.values():
            sc.close()
        self._shards = {}

    def abort(self, e: BaseException | None = None) -> None:
        c, self._conn = self._conn, None
        if c is not None:
            try:
                if c.info.transaction_status != 0:
                    c.rollback()
                _drop_version(c, self.loc, self.name)
            except Exception:
                pass  # (the next build drops a version left 'building')
            finally:
                c.close()
        self._close_shards()
        if e is None:
            return
        if _is_disk_full(e):
            raise DiskFullError(f"{self.loc.shown}: the database server ran out of space while writing the new version; "
                                "the previous version is unchanged and the partial one was removed; free space on the "
                                "server and run again") from None
        raise e


def _vector_text(v: np.ndarray) -> str:
    """A vector in pgvector's text form (the column casts it to halfvec): much faster than per-value
    formatting in Python."""
    return "[" + ",".join(map(repr, v.tolist())) + "]"


def _drop_version(c, loc: Location, name: str) -> None:
    """Drop a version's schema (and its part on each shard); the row goes last, so a shard that could not
    be reached is tried again by the next build."""
    v = _version_schema(loc, name)
    row = c.execute(f"SELECT shards FROM {_q(loc.schema)}.askc_versions WHERE name = %s", [name]).fetchone()
    for srv in (row[0] if row else None) or []:
        try:
            with _connect_shard(c, loc, srv) as sc:
                sc.execute(f"DROP SCHEMA IF EXISTS {v} CASCADE")
        except ConfigError:  # (no longer defined on the coordinator: nothing of ours to reach there)
            continue
        except Exception:
            return
    c.execute(f"DROP SCHEMA IF EXISTS {v} CASCADE")
    c.execute(f"DELETE FROM {_q(loc.schema)}.askc_versions WHERE name = %s", [name])


def _chunks_ddl(v: str, dim: int, partitioned: bool = False) -> str:
    key = "integer NOT NULL" if partitioned else "integer PRIMARY KEY"
    return f"""CREATE TABLE {v}.chunks(
            id {key}, chunk_id text {'' if partitioned else 'UNIQUE '}NOT NULL, doc_id text NOT NULL,
            source text NOT NULL, position integer, text text NOT NULL, embed_text text NOT NULL, title text,
            section text, source_type text, date text, url text, tags jsonb, tags_lower text[] NOT NULL,
            groups text[] NOT NULL, authors jsonb, unit_id text, reply_to text, quoted_from text, n_tokens integer,
            n_tiktoken integer, embed_hash text NOT NULL, role text, accepted smallint, votes integer, dl real NOT NULL,
            embedding halfvec({int(dim)}) NOT NULL){' PARTITION BY HASH (id)' if partitioned else ''}"""


def _chunk_indexes(v: str) -> list[str]:
    return [f"CREATE INDEX ON {v}.chunks (doc_id, position)", f"CREATE INDEX ON {v}.chunks (source)",
            f"CREATE INDEX ON {v}.chunks (source_type)", f"CREATE INDEX ON {v}.chunks (left(date, 10))",
            f"CREATE INDEX ON {v}.chunks (unit_id)", f"CREATE INDEX ON {v}.chunks (embed_hash)",
            f"CREATE INDEX ON {v}.chunks USING gin (groups)", f"CREATE INDEX ON {v}.chunks USING gin (tags_lower)",
            f"CREATE INDEX ON {v}.chunks USING hnsw (embedding halfvec_ip_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"]


def _batch_postings(chunks: list[Chunk]) -> tuple[dict, dict]:
    """bm25.postings of a batch of chunks (rowids 0..len-1) with FTS5's own tokenizer, in a scratch
    in-memory FTS5 table: its terms, frequencies and lengths (each a chunk's own); its impacts, idf and
    avgdl are the batch's, not the corpus's (PgWriter.finish computes those)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, tokenize='porter unicode61')")
        db.executemany("INSERT INTO chunks_fts(rowid, text, title, section) VALUES (?, ?, ?, ?)",
                       ((i, c.text, c.title, c.section) for i, c in enumerate(chunks)))
        db.commit()
        return _bm25.postings(db, len(chunks))
    finally:
        db.close()


# tables whose rows are kept one per key, the last (PgWriter._upsert): columns, key
_UPSERT = {"sources": ("key, path, kind, hash, size, n_docs, n_chunks, status, error", "key"),
           "docs": (_DOC_COLS, "doc_id"),
           "people": (_PERSON_COLS, "person_id"),
           "chunk_people": ("chunk, person_id, role, weight", "chunk, person_id, role")}


# -- reading the previous version for a build ------------------------------------------------
class PgPrevious:
    """The live version a build reuses from: manifest, store, sources and vectors by embed key."""

    def __init__(self, loc: Location, name: str, manifest: dict) -> None:
        self.loc, self.name, self.manifest = loc, name, manifest
        self.vschema = _version_schema(loc, name)
        self.store = PgStore(_pool(loc), self.vschema)
        self.sources = {s["key"]: s for s in self.store.sources()}

    def vectors_by_key(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        want = list(dict.fromkeys(keys))
        out: dict[str, np.ndarray] = {}
        with _pool(self.loc).conn() as c:
            for i in range(0, len(want), 5000):
                for h, vec in c.execute(f"SELECT DISTINCT ON (embed_hash) embed_hash, embedding::vector FROM "
                                        f"{self.vschema}.chunks WHERE embed_hash = ANY(%s)", [want[i:i + 5000]]):
                    out[h] = _np(vec)
        return out

    def close(self) -> None:
        pass


class _Lock:
    """One build or update per index: a session advisory lock, released when the build ends or dies."""

    def __init__(self, loc: Location, wait: bool) -> None:
        self.loc, self.wait, self.conn = loc, wait, None

    def __enter__(self) -> "_Lock":
        self.conn = _pool(self.loc)._connect()
        key = f"askcolleague-build:{self.loc.schema}"
        if self.wait:
            self.conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        elif not self.conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]:
            self.conn.close()
            self.conn = None
            raise IndexLockedError(f"{self.loc.shown}: another build or update is running on this index; wait for it "
                                   "to finish, or pass --wait")
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()  # (ends the session: the lock goes with it)
            self.conn = None


class PgFeedbackStore:
    """Feedback rows in the index's schema (the same interface as feedback.FeedbackStore)."""

    def __init__(self, loc: Location) -> None:
        self.loc = loc
        self.pool = _pool(loc)
        self.t = f"{_q(loc.schema)}.askc_feedback"
        with self.pool.conn() as c:
            if not _base_exists(c, loc.schema):
                _ensure_base(c, loc)

    def add(self, kind: str, question: str, answer: str, chunk_ids: list[str] | None = None,
            chunk_id: str | None = None, comment: str | None = None, query: str | None = None,
            index_version: str | None = None) -> int:
        from ..feedback import KINDS

        Jsonb = _driver().Jsonb

        if kind not in KINDS:
            raise ValueError(f"feedback kind must be one of {', '.join(KINDS)}, not {kind!r}")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with self.pool.conn() as c:
            return int(c.execute(
                f"INSERT INTO {self.t}(created_at, kind, question, query, answer, chunk_ids, chunk_id, comment, "
                "index_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                [now, kind, question, query, answer, Jsonb(list(chunk_ids or [])), chunk_id,
                 (comment or "").strip() or None, index_version]).fetchone()[0])

    def rows(self) -> list[dict]:
        cols = ("id", "created_at", "kind", "question", "query", "answer", "chunk_ids", "chunk_id", "comment",
                "index_version")
        with self.pool.conn() as c:
            return [dict(zip(cols, r)) for r in c.execute(f"SELECT {', '.join(cols)} FROM {self.t} ORDER BY id")]

    def delete(self, ids: list[int]) -> None:
        with self.pool.conn() as c:
            c.execute(f"DELETE FROM {self.t} WHERE id = ANY(%s)", [list(ids)])

    def close(self) -> None:
        pass

    def __enter__(self) -> "PgFeedbackStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the backend -----------------------------------------------------------------------------
class PgBackend:
    """The PostgreSQL backend's entry points for the commands (the `Backend` of index/base.py)."""

    name = "postgresql"

    @staticmethod
    def location(loc) -> str:
        return Location.parse(loc).uri

    @staticmethod
    def display(loc) -> str:
        return Location.parse(loc).shown

    @staticmethod
    def open(loc, settings: Settings | None = None, embedder: Embedder | None = None) -> PgIndex:
        settings = settings or Settings.load()
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            name, m = _require_live(c, where)
        if m.get("format") != FORMAT or m.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(f"{where.shown}: index format {m.get('format_version')} is not supported by this "
                                   f"version (expects {FORMAT_VERSION}); run `askcolleague index build --rebuild`")
        check_open_model(m, embedder, settings, where.shown)
        return PgIndex(where, name, m, embedder)

    @staticmethod
    def live_name(loc) -> str | None:
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            if not _base_exists(c, where.schema):
                return None
            row = c.execute(f"SELECT value #>> '{{}}' FROM {_q(where.schema)}.askc_meta WHERE key = 'current'").fetchone()
        return row[0] if row else None

    @staticmethod
    def status(loc) -> dict:
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            name, m = _require_live(c, where)
            size = c.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                             [_version_schema(where, name)]).fetchone()[0]
        m = dict(m)
        m["index"] = where.shown
        m["version"] = name
        m["bytes"] = int(size)
        return m

    @staticmethod
    def lock(loc, wait: bool = False) -> _Lock:
        return _Lock(Location.parse(loc), wait)

    @staticmethod
    def previous(loc) -> PgPrevious | None:
        """The live version to build from (with the lock held: versions left 'building' are dropped)."""
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            _ensure_base(c, where)
            for (name,) in c.execute(f"SELECT name FROM {_q(where.schema)}.askc_versions WHERE state = 'building'").fetchall():
                _drop_version(c, where, name)
            live = _live(c, where)
        return PgPrevious(where, *live) if live else None

    @staticmethod
    def writer(loc, previous: PgPrevious | None, need_bytes: int) -> PgWriter:
        return PgWriter(Location.parse(loc), previous)

    @staticmethod
    def resume_dir(loc) -> Path:
        """Where a build keeps the vectors it embedded until it is published (indexing/resume.py): the
        user's cache folder, one per server, database and schema (never the password)."""
        where = Location.parse(loc)
        name = hashlib.sha256(f"{where.shown.split('?')[0]}|{where.schema}".encode()).hexdigest()[:16]
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "askcolleague" / "resume" / f"pg-{name}"

    @staticmethod
    def read_forgotten(loc) -> list[dict]:
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            return (_meta(c, where.schema, "forgotten", []) or []) if _base_exists(c, where.schema) else []

    @staticmethod
    def write_forgotten(loc, entries: list[dict]) -> None:
        Jsonb = _driver().Jsonb
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            _ensure_base(c, where)
            c.execute(f"INSERT INTO {_q(where.schema)}.askc_meta VALUES ('forgotten', %s) ON CONFLICT (key) "
                      "DO UPDATE SET value = excluded.value", [Jsonb(entries)])

    @staticmethod
    def feedback(loc) -> PgFeedbackStore:
        return PgFeedbackStore(Location.parse(loc))

    @staticmethod
    def has_feedback(loc) -> bool:
        where = Location.parse(loc)
        with _pool(where).conn() as c:
            return _base_exists(c, where.schema) and bool(
                c.execute(f"SELECT EXISTS (SELECT 1 FROM {_q(where.schema)}.askc_feedback)").fetchone()[0])
