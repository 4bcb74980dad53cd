"""Durable answer feedback (thumbs up/down, wrong source): in SQLite beside a folder index
(`<index>/feedback.sqlite`), in the index's own schema on PostgreSQL (index/postgres.py)."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path

KINDS = ("up", "down", "wrong_source")
FILENAME = "feedback.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,                 -- ISO 8601, UTC
  kind TEXT NOT NULL CHECK (kind IN ('up', 'down', 'wrong_source')),
  question TEXT NOT NULL,                   -- as the user asked it
  query TEXT,                               -- what was searched (follow-ups are rewritten)
  answer TEXT NOT NULL,
  chunk_ids TEXT NOT NULL,                  -- JSON list: the answer's cited chunk ids, in [n] order
  chunk_id TEXT,                            -- wrong_source: the citation reported
  comment TEXT,
  index_version TEXT);
"""
_COLS = ("id", "created_at", "kind", "question", "query", "answer", "chunk_ids", "chunk_id", "comment",
         "index_version")


class FeedbackStore:
    """Append-only feedback rows; every add is committed with SQLite's synchronous=FULL before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    @classmethod
    def for_index(cls, index_path: str | Path) -> "FeedbackStore":
        return cls(Path(index_path) / FILENAME)

    def add(self, kind: str, question: str, answer: str, chunk_ids: list[str] | None = None,
            chunk_id: str | None = None, comment: str | None = None, query: str | None = None,
            index_version: str | None = None) -> int:
        """Store one piece of feedback; returns its id."""
        if kind not in KINDS:
            raise ValueError(f"feedback kind must be one of {', '.join(KINDS)}, not {kind!r}")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self._lock, self.db:
            cur = self.db.execute(
                "INSERT INTO feedback(created_at, kind, question, query, answer, chunk_ids, chunk_id, comment,"
                " index_version) VALUES (?,?,?,?,?,?,?,?,?)",
                (now, kind, question, query, answer, json.dumps(list(chunk_ids or [])), chunk_id,
                 (comment or "").strip() or None, index_version))
            return int(cur.lastrowid)

    def rows(self) -> list[dict]:
        """All feedback, oldest first; chunk_ids decoded to a list."""
        with self._lock:
            rows = self.db.execute(f"SELECT {', '.join(_COLS)} FROM feedback ORDER BY id").fetchall()
        return [dict(zip(_COLS, r), chunk_ids=json.loads(r[6])) for r in rows]

    def delete(self, ids: list[int]) -> None:
        with self._lock, self.db:
            self.db.executemany("DELETE FROM feedback WHERE id = ?", [(i,) for i in ids])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "FeedbackStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def forget_chunks(index_path: str | Path, chunk_ids: list[str]) -> int:
    """Delete the feedback rows that cite or report any of these chunks (for `forget`); returns how many."""
    from .index import backend_for  # (lazy: the index package imports this module's store)

    backend = backend_for(index_path)
    gone = set(chunk_ids)
    if not gone or not backend.has_feedback(index_path):
        return 0
    with backend.feedback(index_path) as store:
        ids = [r["id"] for r in store.rows() if r["chunk_id"] in gone or gone & set(r["chunk_ids"])]
        store.delete(ids)
    return len(ids)


def export(index_path: str | Path) -> list[dict]:
    """Every feedback row of an index (empty when none was given; creates nothing)."""
    from .index import backend_for

    backend = backend_for(index_path)
    if not backend.has_feedback(index_path):
        return []
    with backend.feedback(index_path) as store:
        return store.rows()


def render(rows: list[dict]) -> str:
    """Plain text, one block per row."""
    out = []
    for r in rows:
        extra = f" chunk {r['chunk_id']}" if r["chunk_id"] else ""
        out.append(f"{r['created_at']}  {r['kind']}{extra}  Q: {r['question']}")
        if r["comment"]:
            out.append(f"    comment: {r['comment']}")
        if r["chunk_ids"]:
            out.append(f"    cited: {', '.join(r['chunk_ids'])}")
    return "\n".join(out) + ("\n" if out else "")
