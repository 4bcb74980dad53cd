"""The SQLite store of an index: sources, docs, chunks (with FTS5 for BM25), people and their links."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from .models import AuthorRef, Chunk, Person, role_of

SCHEMA = """
CREATE TABLE sources(
  key TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,
  size INTEGER, n_docs INTEGER, n_chunks INTEGER, status TEXT NOT NULL DEFAULT 'ok', error TEXT);
CREATE TABLE docs(
  doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT, source_type TEXT, url TEXT, date TEXT,
  tags TEXT, groups_json TEXT, authors_json TEXT, meta_json TEXT);
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL, source TEXT NOT NULL,
  position INTEGER, text TEXT NOT NULL, embed_text TEXT NOT NULL, title TEXT, section TEXT,
  source_type TEXT, date TEXT, url TEXT, tags_json TEXT, groups_json TEXT, authors_json TEXT,
  unit_id TEXT, reply_to TEXT, quoted_from TEXT, n_tokens INTEGER, n_tiktoken INTEGER,
  embed_hash TEXT NOT NULL, role TEXT, accepted INTEGER, votes INTEGER);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX chunks_source ON chunks(source);
CREATE INDEX chunks_type ON chunks(source_type);
CREATE INDEX chunks_date ON chunks(date);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
  text, title, section, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TABLE people(
  person_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, title TEXT, team TEXT, location TEXT,
  expertise_json TEXT, bio TEXT, url TEXT, aliases_json TEXT, handles_json TEXT, groups_json TEXT,
  has_profile INTEGER, source TEXT);
CREATE TABLE chunk_people(
  chunk INTEGER NOT NULL, person_id TEXT NOT NULL, role TEXT NOT NULL, weight REAL NOT NULL,
  PRIMARY KEY(chunk, person_id, role));
CREATE INDEX chunk_people_person ON chunk_people(person_id);
"""


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def visible_sql(groups: list[str], alias: str = "c") -> tuple[str, list[str]]:
    """An SQL condition on the chunks row `alias` for an asker in `groups`, and its arguments: a
    chunk without groups is visible to everyone, otherwise the asker needs one of its groups."""
    cond = (f"({alias}.groups_json = '[]' OR EXISTS (SELECT 1 FROM json_each({alias}.groups_json) g "
            f"WHERE g.value IN ({','.join('?' * max(len(groups), 1))})))")
    return cond, list(groups) or [""]


class Store:
    """Read/write access to ``store.sqlite``; rows are plain dicts or model dataclasses."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            uri = f"file:{self.path}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.db = sqlite3.connect(str(self.path), check_same_thread=False)
        self.db.row_factory = sqlite3.Row

    @classmethod
    def create(cls, path: Path) -> "Store":
        s = cls(path)
        s.db.executescript("PRAGMA journal_mode=DELETE;" + SCHEMA)
        return s

    def close(self) -> None:
        self.db.close()

    # --- writing -------------------------------------------------------------------------
    def add_source(self, key: str, path: str, kind: str, hash_: str, size: int, n_docs: int,
                   n_chunks: int, status: str = "ok", error: str | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?,?,?)",
                        (key, path, kind, hash_, size, n_docs, n_chunks, status, error))

    def add_doc(self, row: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?,?,?,?,?)",
            (row["doc_id"], row["source"], row["title"], row["source_type"], row.get("url"),
             row.get("date"), _j(row.get("tags") or []), _j(row.get("groups") or []),
             _j(row.get("authors") or []), _j(row.get("meta") or {})))

    def add_chunks(self, chunks: Iterable[tuple[int, Chunk, str]]) -> None:
        """Insert (row id, chunk, embedding hash) triples; row id is the FAISS vector id."""
        rows = [
            (rid, c.chunk_id, c.doc_id, c.source, c.position, c.text, c.embed_text, c.title, c.section,
             c.source_type, c.date, c.url, _j(c.tags), _j(c.groups), _j([asdict(a) for a in c.authors]),
             c.unit_id, c.reply_to, c.quoted_from, c.n_tokens, c.n_tiktoken, h,
             role_of(c.source_type, c.role), None if c.accepted is None else int(c.accepted), c.votes)
            for rid, c, h in chunks
        ]
        self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def add_people(self, people: Iterable[Person]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO people VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(p.person_id, p.name, p.email, p.title, p.team, p.location, _j(p.expertise), p.bio, p.url,
              _j(p.aliases), _j(p.handles), _j(p.groups), int(p.has_profile), p.source) for p in people])

    def add_links(self, links: Iterable[tuple[int, str, str, float]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO chunk_people VALUES (?,?,?,?)", list(links))

    def finish(self) -> None:
        """Build the full-text index, analyse, and flush to disk."""
        self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
        self.db.execute("ANALYZE")
        self.db.commit()

    # --- reading -------------------------------------------------------------------------
    def count(self, table: str) -> int:
        assert table in ("sources", "docs", "chunks", "people", "chunk_people")
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def sources(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM sources ORDER BY key")]

    def chunk_rows(self, ids: Iterable[int] | None = None) -> list[dict]:
        if ids is None:
            cur = self.db.execute("SELECT * FROM chunks ORDER BY id")
            return [_chunk_row(r) for r in cur]
        ids = list(ids)
        out: dict[int, dict] = {}
        for i in range(0, len(ids), 900):
            part = ids[i:i + 900]
            q = f"SELECT * FROM chunks WHERE id IN ({','.join('?' * len(part))})"
            for r in self.db.execute(q, part):
                out[r["id"]] = _chunk_row(r)
        return [out[i] for i in ids if i in out]

    def chunks_of_source(self, key: str) -> list[dict]:
        return [_chunk_row(r) for r in self.db.execute("SELECT * FROM chunks WHERE source=? ORDER BY id", (key,))]

    def docs_of_source(self, key: str) -> list[dict]:
        return [_doc_row(r) for r in self.db.execute("SELECT * FROM docs WHERE source=?", (key,))]

    def people(self) -> list[Person]:
        return [_person(r) for r in self.db.execute("SELECT * FROM people ORDER BY name")]

    def person(self, person_id: str) -> Person | None:
        r = self.db.execute("SELECT * FROM people WHERE person_id=?", (person_id,)).fetchone()
        return _person(r) if r else None

    def visible_profiles(self, person_ids: Iterable[str], groups: list[str] | None) -> set[str]:
        """The people among `person_ids` whose profile an asker in `groups` may see (None: no access
        control, all of them). A hidden profile's fields (title, team, url, email) must not be shown."""
        ids = list(dict.fromkeys(person_ids))
        if groups is None:
            return set(ids)
        cond, args = visible_sql(groups)
        out: set[str] = set()
        for i in range(0, len(ids), 400):
            part = ids[i:i + 400]
            q = (f"SELECT DISTINCT l.person_id FROM chunk_people l JOIN chunks c ON c.id = l.chunk "
                 f"WHERE l.role = 'profile' AND l.person_id IN ({','.join('?' * len(part))}) AND {cond}")
            out.update(r[0] for r in self.db.execute(q, [*part, *args]))
        return out

    def people_counts(self, groups: list[str] | None = None) -> dict[str, dict[str, int]]:
        """person_id → {source_type: number of documents, posts, comments, messages they wrote}.

        With `groups`, only what a member of those groups may see is counted.
        """
        out: dict[str, dict[str, int]] = {}
        vis, args = "", []
        if groups is not None:
            cond, args = visible_sql(groups)
            vis = "AND " + cond
        q = f"""SELECT l.person_id, c.source_type, COUNT(DISTINCT CASE WHEN c.source_type = 'document' THEN c.doc_id
                      ELSE c.doc_id || '/' || COALESCE(c.unit_id, '') END)
               FROM chunk_people l JOIN chunks c ON c.id = l.chunk
               WHERE l.role = 'author' AND c.quoted_from IS NULL {vis} GROUP BY l.person_id, c.source_type"""
        for pid, st, n in self.db.execute(q, args):
            out.setdefault(pid, {})[st] = n
        return out

    def authored_rows(self, person_id: str, groups: list[str] | None = None, limit: int = 5) -> list[dict]:
        """Some chunks a person wrote that an asker in `groups` may see (None: any), as rows."""
        vis, args = "", []
        if groups is not None:
            cond, args = visible_sql(groups)
            vis = "AND " + cond
        q = (f"SELECT c.* FROM chunk_people l JOIN chunks c ON c.id = l.chunk WHERE l.person_id = ? "
             f"AND l.role = 'author' {vis} ORDER BY c.id LIMIT ?")
        return [_chunk_row(r) for r in self.db.execute(q, [person_id, *args, limit])]

    def chunks_at(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict]:
        """The chunks at (doc_id, position) pairs, as rows keyed by the pair (absent pairs left out)."""
        keys = list(dict.fromkeys(keys))
        out: dict[tuple[str, int], dict] = {}
        for i in range(0, len(keys), 400):
            part = keys[i:i + 400]
            q = f"SELECT * FROM chunks WHERE (doc_id, position) IN (VALUES {','.join(['(?, ?)'] * len(part))})"
            for r in self.db.execute(q, [x for k in part for x in k]):
                out[(r["doc_id"], r["position"])] = _chunk_row(r)
        return out

    def chunks_of_units(self, unit_ids: Iterable[str], doc_ids: Iterable[str]) -> list[dict]:
        """The chunks of the given units (messages, comments) within the given documents, as rows."""
        units, docs = list(dict.fromkeys(unit_ids)), list(dict.fromkeys(doc_ids))
        if not units or not docs:
            return []
        q = (f"SELECT * FROM chunks WHERE unit_id IN ({','.join('?' * len(units))}) "
             f"AND doc_id IN ({','.join('?' * len(docs))}) ORDER BY id")
        return [_chunk_row(r) for r in self.db.execute(q, [*units, *docs])]

    def links_for(self, chunk_ids: Iterable[int]) -> dict[int, list[tuple[str, str, float]]]:
        ids = list(chunk_ids)
        out: dict[int, list[tuple[str, str, float]]] = {}
        for i in range(0, len(ids), 900):
            part = ids[i:i + 900]
            q = f"SELECT chunk, person_id, role, weight FROM chunk_people WHERE chunk IN ({','.join('?' * len(part))})"
            for c, pid, role, w in self.db.execute(q, part):
                out.setdefault(c, []).append((pid, role, w))
        return out

    def iter_embed_hashes(self) -> Iterator[tuple[int, str]]:
        yield from self.db.execute("SELECT id, embed_hash FROM chunks")


def _chunk_row(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["tags"] = json.loads(d.pop("tags_json") or "[]")
    d["groups"] = json.loads(d.pop("groups_json") or "[]")
    d["authors"] = json.loads(d.pop("authors_json") or "[]")
    return d


def _doc_row(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["tags"] = json.loads(d.pop("tags") or "[]")
    d["groups"] = json.loads(d.pop("groups_json") or "[]")
    d["authors"] = json.loads(d.pop("authors_json") or "[]")
    d["meta"] = json.loads(d.pop("meta_json") or "{}")
    return d


def chunk_from_row(d: dict) -> Chunk:
    """Rebuild a Chunk from a stored row (used to carry unchanged sources into a new build)."""
    return Chunk(
        chunk_id=d["chunk_id"], doc_id=d["doc_id"], source=d["source"], position=d["position"],
        text=d["text"], embed_text=d["embed_text"], title=d["title"], section=d["section"],
        source_type=d["source_type"], authors=[AuthorRef(**a) for a in d["authors"]], date=d["date"],
        url=d["url"], tags=d["tags"], groups=d["groups"], unit_id=d["unit_id"], reply_to=d["reply_to"],
        quoted_from=d["quoted_from"], n_tokens=d["n_tokens"], n_tiktoken=d["n_tiktoken"],
        role=d.get("role"), accepted=None if d.get("accepted") is None else bool(d["accepted"]), votes=d.get("votes"))


def _person(r: sqlite3.Row) -> Person:
    return Person(
        name=r["name"], email=r["email"], title=r["title"], team=r["team"], location=r["location"],
        expertise=json.loads(r["expertise_json"] or "[]"), bio=r["bio"], url=r["url"],
        aliases=json.loads(r["aliases_json"] or "[]"), handles=json.loads(r["handles_json"] or "{}"),
        groups=json.loads(r["groups_json"] or "[]"), person_id=r["person_id"],
        has_profile=bool(r["has_profile"]), source=r["source"])
