"""The SQLite store of an index: sources, docs, chunks (with FTS5 for BM25), people and their links."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..models import AuthorRef, Chunk, Person, normalize_name, role_of

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

    # -- selections: filters and access control, applied before any ranking ---------------------
    def person_ids(self, person: str) -> list[str]:
        """People matching a name, alias, email or handle (normalised)."""
        key = normalize_name(person)
        low = person.strip().lower()
        out = []
        for p in self.people():
            names = [p.name, *p.aliases]
            if (low == (p.email or "") or low in {h.lower() for h in p.handles.values()}
                    or key in {normalize_name(n) for n in names} or low == p.person_id):
                out.append(p.person_id)
        return out

    def visible(self, groups: list[str]) -> np.ndarray:
        """Ids of the chunks an asker in `groups` may see."""
        cond, args = visible_sql(groups)
        return np.fromiter((r[0] for r in self.db.execute(f"SELECT c.id FROM chunks c WHERE {cond}", args)),
                           dtype=np.int64)

    def select(self, f, person_ids: list[str] | None = None) -> np.ndarray | None:
        """Ids of chunks passing the filters `f` (a search.Filters; None: no restriction). `person_ids`:
        the people `f.person` names (resolved by the caller), an empty list when it names nobody."""
        if f is None or f.is_empty():
            return None
        where, args = [], []
        if f.source_types:
            where.append(f"c.source_type IN ({','.join('?' * len(f.source_types))})")
            args += f.source_types
        if f.person:
            if not person_ids:
                return np.zeros(0, dtype=np.int64)
            where.append(f"c.id IN (SELECT chunk FROM chunk_people WHERE role IN ('author','profile') "
                         f"AND person_id IN ({','.join('?' * len(person_ids))}))")
            args += person_ids
        if f.since:
            where.append("substr(c.date, 1, 10) >= ?")
            args.append(f.since[:10])
        if f.until:
            where.append("substr(c.date, 1, 10) <= ?")
            args.append(f.until[:10])
        if f.tags:
            where.append("EXISTS (SELECT 1 FROM json_each(c.tags_json) t WHERE lower(t.value) IN (%s))"
                         % ",".join("?" * len(f.tags)))
            args += [t.lower() for t in f.tags]
        if f.groups is not None:
            cond, more = visible_sql(f.groups)
            where.append(cond)
            args += more
        q = "SELECT c.id FROM chunks c WHERE " + " AND ".join(where)
        return np.fromiter((r[0] for r in self.db.execute(q, args)), dtype=np.int64)

    def ids(self, selection: np.ndarray | None) -> np.ndarray:
        """Every chunk id a selection admits, in order (None: all)."""
        if selection is None:
            return np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY id")), dtype=np.int64)
        return np.sort(np.asarray(selection, dtype=np.int64))

    def admits(self, selection: np.ndarray | None, ids: Iterable[int]) -> set[int]:
        """Those of `ids` that a selection (from `select`) admits."""
        ids = set(ids)
        return ids if selection is None else ids & set(np.asarray(selection).tolist())

    def facets(self, groups: list[str] | None = None) -> tuple[set[str], set[str]]:
        """(source types, people names) present; with `groups`, only of what the asker may see: source
        types of visible passages, and people with a visible profile or passage."""
        if groups is None:
            present = {r[0] for r in self.db.execute("SELECT DISTINCT source_type FROM chunks")}
            return present, {p.name for p in self.people()}
        vis, args = visible_sql(groups)
        present = {r[0] for r in self.db.execute(f"SELECT DISTINCT source_type FROM chunks c WHERE {vis}", args)}
        names = {r[0] for r in self.db.execute(
            "SELECT name FROM people p WHERE EXISTS (SELECT 1 FROM chunk_people cp "
            f"JOIN chunks c ON c.id = cp.chunk WHERE cp.person_id = p.person_id AND {vis})", args)}
        return present, names

    def visible_totals(self, groups: list[str]) -> tuple[int, int]:
        """(passages, documents) an asker in `groups` may see."""
        vis, args = visible_sql(groups)
        chunks, docs = self.db.execute(
            f"SELECT count(*), count(DISTINCT c.doc_id) FROM chunks c WHERE {vis}", args).fetchone()
        return chunks, docs

    def bm25_fts5(self, words: list[str], depth: int, allowed: np.ndarray | None,
                  weights: str) -> list[tuple[int, float]]:
        """BM25 through SQLite FTS5 (indexes built before the in-memory postings, and the tests'
        reference): the top `depth` chunks among `allowed` ids, as (id, score; higher is better)."""
        mq = " OR ".join(f'"{w}"' for w in words)
        sql = (f"SELECT rowid, -bm25(chunks_fts, {weights}) AS s FROM chunks_fts "
               f"WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts, {weights}), rowid LIMIT ?")
        if allowed is None:
            return [(int(r), float(s)) for r, s in self.db.execute(sql, (mq, depth))]
        ok = set(allowed.tolist())
        limit = depth * 4
        while True:  # widen until enough allowed rows are found or the matches run out
            rows = self.db.execute(sql, (mq, limit)).fetchall()
            out = [(int(r), float(s)) for r, s in rows if r in ok][:depth]
            if len(out) >= depth or len(rows) < limit:
                return out
            limit *= 4

    def chunk_ids_of_person(self, person_id: str) -> list[str]:
        """The chunk ids (strings) of every passage linked to a person (authored, or their profile)."""
        q = "SELECT c.chunk_id FROM chunk_people l JOIN chunks c ON c.id = l.chunk WHERE l.person_id = ?"
        return [r[0] for r in self.db.execute(q, (person_id,))]

    def passage(self, chunk_id: str, groups: list[str] | None = None) -> tuple[dict, dict | None, dict[int, str]] | None:
        """One chunk by its chunk id, if an asker in `groups` (None: anyone) may see it: (its row, its
        document's row, {position: chunk id} of the visible chunks just before and after it). A
        missing chunk and a hidden one both give None, after the same single query."""
        vis, args = visible_sql(groups) if groups is not None else ("1", [])
        r = self.db.execute(f"SELECT * FROM chunks c WHERE c.chunk_id = ? AND {vis}", [chunk_id, *args]).fetchone()
        if r is None:
            return None
        row = _chunk_row(r)
        d = self.db.execute("SELECT * FROM docs WHERE doc_id = ?", [row["doc_id"]]).fetchone()
        near = {x["position"]: x["chunk_id"] for x in self.db.execute(
            f"SELECT c.position, c.chunk_id FROM chunks c WHERE c.doc_id = ? AND c.position IN (?, ?) AND {vis}",
            [row["doc_id"], row["position"] - 1, row["position"] + 1, *args])}
        return row, (_doc_row(d) if d is not None else None), near

    def ocr_docs(self, doc_ids: Iterable[str]) -> set[str]:
        """Those of the documents whose text was (partly) read by OCR (their meta says `ocr: true`)."""
        ids = list(dict.fromkeys(doc_ids))
        if not ids:
            return set()
        q = f"SELECT doc_id, meta_json FROM docs WHERE doc_id IN ({','.join('?' * len(ids))})"
        return {d for d, m in self.db.execute(q, ids) if json.loads(m or "{}").get("ocr") is True}

    def doc_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT doc_id FROM docs")]

    def mentions(self, word: str, groups: list[str] | None = None) -> bool:
        """Whether any chunk an asker in `groups` may see (None: any) contains `word` (FTS5's terms)."""
        sql, extra = "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1", []
        if groups is not None:
            cond, extra = visible_sql(groups)
            sql = f"SELECT 1 FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ? AND {cond} LIMIT 1"
        return self.db.execute(sql, (f'"{word}"', *extra)).fetchone() is not None

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
