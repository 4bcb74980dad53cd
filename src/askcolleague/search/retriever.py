"""Hybrid retrieval: FAISS dense search and SQLite FTS5 BM25, filtered before ranking, fused by RRF."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..index import Index, Selection, is_empty
from ..index.bm25 import bm25_sql_weights
from ..models import SOURCE_TYPES
from ..text import question_words
from .fusion import reciprocal_rank_fusion

MODES = ("hybrid", "dense", "bm25")


@dataclass
class Filters:
    """Restrictions applied before ranking. Dates are ISO strings compared on their date part."""

    source_types: list[str] | None = None
    person: str | None = None  # a name, alias, email or handle
    tags: list[str] | None = None
    since: str | None = None
    until: str | None = None
    groups: list[str] | None = None  # the asker's groups (access control); None = no restriction

    def is_empty(self) -> bool:
        return not (self.source_types or self.person or self.tags or self.since or self.until
                    or self.groups is not None)


@dataclass
class Hit:
    """One retrieved chunk: its store row, fused score and the per-run evidence."""

    id: int
    score: float
    row: dict
    dense: float | None = None  # cosine similarity to the query
    bm25: float | None = None  # FTS5 bm25 (higher is better here)
    ranks: dict[str, int] = field(default_factory=dict)


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="askcolleague-bm25")


class Retriever:
    """Searches one loaded Index. Thread-safe for reads."""

    def __init__(self, index: Index, rrf_k: int = 60, max_per_doc: int = 2) -> None:
        self.index = index
        self.rrf_k = rrf_k
        self.max_per_doc = max_per_doc

    # -- filters ---------------------------------------------------------------------------
    def person_ids(self, person: str) -> list[str]:
        """People matching a name, alias, email or handle (normalised)."""
        return self.index.store.person_ids(person)

    def allowed(self, f: Filters | None) -> Selection:
        """The chunks passing the filters, as the backend's Selection (None = no filter)."""
        if f is None or f.is_empty():
            return None
        bad = [t for t in f.source_types or [] if t not in SOURCE_TYPES]
        if bad:
            raise ConfigError(f"unknown source type {bad[0]!r}; use one of {', '.join(SOURCE_TYPES)}")
        return self.index.store.select(f, self.person_ids(f.person) if f.person else None)

    # -- runs ------------------------------------------------------------------------------
    def dense(self, qvec: np.ndarray, depth: int, allowed: Selection) -> list[tuple[int, float]]:
        return self.index.vectors.search(qvec, depth, allowed)

    def bm25(self, query: str, depth: int, allowed: Selection,
             groups: list[str] | None = None) -> list[tuple[int, float]]:
        """BM25 run; with `groups` (access control) its statistics cover only what the asker may see."""
        words = question_words(query)
        if not words or is_empty(allowed):
            return []
        lex = self.index.bm25
        if lex is not None:  # the backend's postings (index/bm25.py, or SQL): FTS5's scores
            return lex.search(words, depth, allowed, visible=self.index.visibility(groups))
        return self.bm25_fts5(words, depth, allowed)

    def bm25_fts5(self, words: list[str], depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """BM25 through SQLite FTS5 (indexes built before bm25/ existed, and the tests' reference)."""
        return self.index.store.bm25_fts5(words, depth, allowed, bm25_sql_weights())

    # -- search ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 8, mode: str = "hybrid", filters: Filters | None = None,
               depth: int | None = None, qvec: np.ndarray | Callable[[], np.ndarray] | None = None, diversify: bool = True) -> list[Hit]:
        """Ranked hits: the top `depth` (default 5k) fused candidates, diversified, cut to k.

        Pass k=None to get every fused candidate (for people ranking). `qvec` is the question's
        vector, or a function computing it (called while BM25 runs), or None to embed it here.
        """
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        depth = depth or max(k * 5, 50)
        allowed = self.allowed(filters)
        runs: dict[str, list[tuple[int, float]]] = {}
        # hybrid: BM25 (SQLite) runs in another thread while the question is embedded and searched
        # (ONNX Runtime, FAISS and SQLite all release the GIL); the two runs overlap on 2 cores
        groups = filters.groups if filters is not None else None
        bm = _POOL.submit(self.bm25, query, depth, allowed, groups) if mode == "hybrid" else None
        try:
            if mode in ("hybrid", "dense"):
                if qvec is None:
                    qvec = self.index.embedder.embed_batch([query])[0]
                elif callable(qvec):
                    qvec = qvec()
                runs["dense"] = self.dense(qvec, depth, allowed)
        finally:
            if bm is not None:
                runs["bm25"] = bm.result()  # (an error in either run is raised here, after both end)
        if mode == "bm25":
            runs["bm25"] = self.bm25(query, depth, allowed, groups)
        fused = reciprocal_rank_fusion([[i for i, _ in r] for r in runs.values()], self.rrf_k)
        rows = {r["id"]: r for r in self.index.store.chunk_rows([i for i, _ in fused])}
        dense = dict(runs.get("dense", []))
        bm = dict(runs.get("bm25", []))
        ranks = {name: {i: n for n, (i, _) in enumerate(r, 1)} for name, r in runs.items()}
        hits = [Hit(id=i, score=s, row=rows[i], dense=dense.get(i), bm25=bm.get(i),
                    ranks={name: rk[i] for name, rk in ranks.items() if i in rk})
                for i, s in fused if i in rows]
        if diversify:
            hits = diversify_hits(hits, self.max_per_doc)
        return hits if k is None else hits[:k]

    def cosine(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to given chunks (vectors are unit length)."""
        return self.index.vectors.cosine(qvec, ids)

def diversify_hits(hits: list[Hit], max_per_doc: int) -> list[Hit]:
    """At most `max_per_doc` chunks of one document/thread at the front; the rest keep their order after."""
    if max_per_doc <= 0:
        return hits
    seen: dict[str, int] = {}
    front, back = [], []
    for h in hits:
        d = h.row["doc_id"]
        seen[d] = seen.get(d, 0) + 1
        (front if seen[d] <= max_per_doc else back).append(h)
    return front + back

