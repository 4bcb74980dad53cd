"""BM25 in memory over FTS5's own terms: the scores of SQLite's ``bm25()``, in milliseconds at 100k chunks.

FTS5 scores an OR query by visiting every row that contains any of its words; for a common word at
100k chunks that took up to 45 ms (bench/bench_memory.py). At build time this module reads the
FTS5 index once (its ``fts5vocab`` instance table, so the terms are exactly FTS5's porter/unicode61
stems) and stores, per term, the chunk ids and each posting's precomputed BM25 impact::

    <version>/bm25/meta.json      parameters, counts
    <version>/bm25/terms.json     the terms, in posting-list order
    <version>/bm25/offsets.npy    int64 [n_terms + 1]: term t's postings are [offsets[t], offsets[t+1])
    <version>/bm25/docs.npy       int32 chunk ids (= FAISS ids)
    <version>/bm25/impacts.npy    float32 idf(t) * f(k1+1) / (f + k1(1 - b + b*D/avgdl))
    <version>/bm25/freqs.npy      float32 f of each posting (column-weighted term frequency)
    <version>/bm25/lengths.npy    float32 D of each chunk (tokens in all columns)

A question's score for a chunk is the sum of its terms' impacts: the same formula as FTS5's
``bm25(chunks_fts, 1.0, 0.5, 0.5)`` (f = column-weighted frequency, D = tokens in all columns,
idf = ln((N - n + 0.5)/(n + 0.5)), at least 1e-6), checked against SQLite by tests/test_lexical.py.
The arrays are memory-mapped, so opening an index stays instant and the pages are shared between
processes. One difference from FTS5's MATCH: a question word that FTS5 splits into several tokens
("on-call") counts as those separate terms, not as a phrase.

Access control: the impacts hold corpus-wide statistics (N, each term's document frequency, avgdl),
so with them the order of two visible passages would depend on words only hidden passages contain.
When the asker may not see every chunk, ``search(..., visible=mask)`` recomputes idf and avgdl over
the visible chunks alone from ``freqs.npy`` and ``lengths.npy``: the scores are exactly FTS5's
``bm25()`` over a table holding only what the asker may see (tests/test_lexical.py).
"""
from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

K1 = 1.2
B = 0.75
# column weights of chunks_fts(text, title, section)
WEIGHTS = {"text": 1.0, "title": 0.5, "section": 0.5}
FOLDER = "bm25"
FORMAT = "askcolleague-bm25-1"


def bm25_sql_weights() -> str:
    return ", ".join(str(WEIGHTS[c]) for c in ("text", "title", "section"))


def _vocab(db: sqlite3.Connection, fts: str, terms: list[str], starts: list[int], block: int = 200_000):
    """The FTS5 table's postings from its fts5vocab instance table, term-major, in blocks of (chunk
    ids, column-weighted frequencies, token counts); each new term and the posting it starts at are
    appended to `terms` and `starts` as the blocks go by."""
    db.execute(f"CREATE VIRTUAL TABLE temp.askc_vocab USING fts5vocab(main, '{fts}', 'instance')")
    try:
        weight = " ".join(f"WHEN '{c}' THEN {w}" for c, w in WEIGHTS.items())
        cur = db.execute(f"SELECT term, doc, sum(CASE col {weight} ELSE 0 END), count(*) "
                         "FROM temp.askc_vocab GROUP BY term, doc")  # (term-major order)
        last, pos = None, 0
        while True:
            rows = cur.fetchmany(block)
            if not rows:
                break
            t, d, f, c = zip(*rows)
            for i, term in enumerate(t):
                if term != last:
                    terms.append(term)
                    starts.append(pos + i)
                    last = term
            pos += len(rows)
            yield np.array(d, dtype=np.int64), np.array(f, dtype=np.float64), np.array(c, dtype=np.int64)
    finally:
        db.execute("DROP TABLE temp.askc_vocab")


def postings(db: sqlite3.Connection, n_rows: int, fts: str = "chunks_fts") -> tuple[dict, dict]:
    """The BM25 postings of the FTS5 table `fts` (rowids 0..n_rows-1), read from its fts5vocab
    instance table: ({terms, offsets, docs, impacts, freqs, lengths} as arrays, meta)."""
    terms: list[str] = []
    starts: list[int] = []
    docs_parts, freq_parts, len_parts = [], [], []
    for d, f, c in _vocab(db, fts, terms, starts):
        docs_parts.append(d)
        freq_parts.append(f)
        len_parts.append(c)
    docs = np.concatenate(docs_parts) if docs_parts else np.zeros(0, dtype=np.int64)
    freq = np.concatenate(freq_parts) if freq_parts else np.zeros(0)
    ntok = np.concatenate(len_parts) if len_parts else np.zeros(0, dtype=np.int64)
    offsets = np.array(starts + [len(docs)], dtype=np.int64)
    if len(docs) and (docs.min() < 0 or docs.max() >= n_rows):
        raise ValueError(f"{fts}: rowids outside 0..{n_rows - 1}")
    dl = np.bincount(docs, weights=ntok, minlength=n_rows) if n_rows else np.zeros(0)
    avgdl = float(dl.sum() / n_rows) if n_rows else 1.0
    df = np.diff(offsets)
    idf = np.log((n_rows - df + 0.5) / (df + 0.5))
    idf[idf <= 0] = 1e-6
    norm = K1 * (1 - B + B * dl[docs] / (avgdl or 1.0))
    impacts = np.repeat(idf, df) * (freq * (K1 + 1)) / (freq + norm)
    arrays = {"terms": terms, "offsets": offsets, "docs": docs.astype(np.int32), "impacts": impacts.astype(np.float32),
              "freqs": freq.astype(np.float32), "lengths": dl.astype(np.float32)}
    meta = {"format": FORMAT, "k1": K1, "b": B, "weights": WEIGHTS, "rows": n_rows, "terms": len(terms),
            "postings": int(len(docs)), "avgdl": avgdl, "tokenizer": "fts5 porter unicode61",
            "visible_statistics": True}
    return arrays, meta


class _NpyStream:
    """A 1-D .npy file written block by block: a header of fixed size, patched with the length at the end."""

    HEADER = 128

    def __init__(self, path: Path, dtype: str) -> None:
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.f = open(path, "wb")
        self.f.write(b"\0" * self.HEADER)

    def write(self, a: np.ndarray) -> None:
        self.f.write(np.ascontiguousarray(a, dtype=self.dtype).tobytes())
        self.n += len(a)

    def close(self) -> None:
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                    "fortran_order": False, "shape": (self.n,)})
        h = head.getvalue()
        if len(h) > self.HEADER:  # (cannot happen for a 1-D array: the header is 128 bytes up to 10^20 rows)
            raise ValueError(f"{self.path}: npy header of {len(h)} bytes")
        self.f.seek(0)
        self.f.write(h[:-1] + b" " * (self.HEADER - len(h)) + b"\n")
        self.f.close()


def _blocks(path: Path, dtype: str, n: int, block: int):
    """(start, array) blocks of a 1-D .npy file written by _NpyStream, read with plain reads."""
    dt = np.dtype(dtype)
    with open(path, "rb") as f:
        f.seek(_NpyStream.HEADER)
        for a in range(0, n, block):
            yield a, np.fromfile(f, dtype=dt, count=min(block, n - a))


def build(db: sqlite3.Connection, n_rows: int, out: Path, fts: str = "chunks_fts", block: int = 1 << 20) -> dict:
    """Write the postings of the FTS5 table `fts` (rowids 0..n_rows-1) into the folder `out`: the same
    arrays as `postings()`, in memory bounded by `block` postings (a 1M-chunk index has ~10^8)."""
    out.mkdir(parents=True, exist_ok=True)
    docs_f, freqs_f = _NpyStream(out / "docs.npy", "<i4"), _NpyStream(out / "freqs.npy", "<f4")
    terms: list[str] = []
    starts: list[int] = []
    dl = np.zeros(n_rows, dtype=np.float64)
    try:
        for d, f, c in _vocab(db, fts, terms, starts, min(block, 200_000)):
            if d.min() < 0 or d.max() >= n_rows:
                raise ValueError(f"{fts}: rowids outside 0..{n_rows - 1}")
            dl += np.bincount(d, weights=c.astype(np.float64), minlength=n_rows)
            docs_f.write(d)
            freqs_f.write(f)
    finally:
        docs_f.close()
        freqs_f.close()
    offsets = np.array(starts + [docs_f.n], dtype=np.int64)
    avgdl = float(dl.sum() / n_rows) if n_rows else 1.0
    df = np.diff(offsets)
    idf = np.log((n_rows - df + 0.5) / (df + 0.5))
    idf[idf <= 0] = 1e-6
    impacts_f = _NpyStream(out / "impacts.npy", "<f4")
    try:
        for (a, d), (_, f) in zip(_blocks(out / "docs.npy", "<i4", docs_f.n, block),
                                  _blocks(out / "freqs.npy", "<f4", docs_f.n, block)):
            term = np.searchsorted(offsets, np.arange(a, a + len(d)), side="right") - 1
            f = f.astype(np.float64)
            norm = K1 * (1 - B + B * dl[d] / (avgdl or 1.0))
            impacts_f.write(idf[term] * (f * (K1 + 1)) / (f + norm))
    finally:
        impacts_f.close()
    np.save(out / "offsets.npy", offsets)
    np.save(out / "lengths.npy", dl.astype(np.float32))
    (out / "terms.json").write_text(json.dumps(terms, ensure_ascii=False))
    meta = {"format": FORMAT, "k1": K1, "b": B, "weights": WEIGHTS, "rows": n_rows, "terms": len(terms),
            "postings": int(docs_f.n), "avgdl": avgdl, "tokenizer": "fts5 porter unicode61",
            "visible_statistics": True}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


_TOK = threading.local()


def fts5_terms(words: list[str]) -> list[str]:
    """FTS5's porter/unicode61 terms of each word, in order (one in-memory FTS5 table per thread)."""
    if not words:
        return []
    db = getattr(_TOK, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE VIRTUAL TABLE q USING fts5(x, tokenize='porter unicode61')")
        db.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, 'instance')")
        _TOK.db = db
    out: list[str] = []
    with db:
        db.executemany("INSERT INTO q(rowid, x) VALUES (?, ?)", list(enumerate(words)))
        for _, term in db.execute("SELECT doc, term FROM qv ORDER BY doc, offset"):
            out.append(term)
        db.execute("DELETE FROM q")
    return out


class Bm25Index:
    """The memory-mapped postings of one index version."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.offsets = np.load(self.folder / "offsets.npy", mmap_mode="r")
        self.docs = np.load(self.folder / "docs.npy", mmap_mode="r")
        self.impacts = np.load(self.folder / "impacts.npy", mmap_mode="r")
        self.term_ids = {t: i for i, t in enumerate(json.loads((self.folder / "terms.json").read_text()))}
        self.n = int(self.meta["rows"])
        # per-posting frequencies and chunk lengths, for statistics over the visible chunks; absent
        # in indexes built before they existed (those score with corpus-wide statistics)
        stats = (self.folder / "freqs.npy").is_file() and (self.folder / "lengths.npy").is_file()
        self.freqs = np.load(self.folder / "freqs.npy", mmap_mode="r") if stats else None
        self.lengths = np.load(self.folder / "lengths.npy", mmap_mode="r") if stats else None
        self._visible_dl: dict[bytes, tuple[int, float]] = {}

    @property
    def visible_statistics(self) -> bool:
        """Whether scores can use statistics over the visible chunks only (see the module docstring)."""
        return self.freqs is not None

    @classmethod
    def open(cls, vdir: Path) -> "Bm25Index | None":
        """The version's postings, or None for an index built before they existed (use FTS5)."""
        folder = Path(vdir) / FOLDER
        if not (folder / "meta.json").is_file():
            return None
        return cls(folder)

    def _visible_stats(self, visible: np.ndarray) -> tuple[int, float]:
        """(N, avgdl) over the chunks of a visibility mask; cached per mask (one per set of groups)."""
        key = np.packbits(visible).tobytes()
        got = self._visible_dl.get(key)
        if got is None:
            n = int(visible.sum())
            got = (n, float(np.asarray(self.lengths, dtype=np.float64)[visible].sum() / n) if n else 1.0)
            if len(self._visible_dl) >= 64:
                self._visible_dl.clear()
            self._visible_dl[key] = got
        return got

    def search(self, words: list[str], depth: int, allowed: np.ndarray | None = None,
               visible: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The top `depth` (chunk id, score) for question words, best first (ties: lower id first).

        `allowed`: chunk ids that may be returned (filters). `visible`: a boolean mask of the chunks
        the asker may see; when some are hidden (and the index has the statistics) idf and avgdl are
        computed over the visible chunks only, so hidden text cannot change a visible passage's score.
        """
        tids = [self.term_ids[t] for t in fts5_terms(words) if t in self.term_ids]
        if not tids or depth <= 0:
            return []
        scores = np.zeros(self.n, dtype=np.float32)
        own = visible is not None and self.freqs is not None and len(visible) == self.n and not visible.all()
        if own:
            n_vis, avgdl = self._visible_stats(visible)
        for t in tids:
            s, e = int(self.offsets[t]), int(self.offsets[t + 1])
            if not own:
                scores[self.docs[s:e]] += self.impacts[s:e]  # (a term's postings hold each chunk once)
                continue
            docs = np.asarray(self.docs[s:e])
            seen = visible[docs]
            docs = docs[seen]
            if not len(docs):
                continue
            df = len(docs)
            idf = max(np.log((n_vis - df + 0.5) / (df + 0.5)), 1e-6)  # FTS5: at least 1e-6
            f = np.asarray(self.freqs[s:e], dtype=np.float64)[seen]
            norm = K1 * (1 - B + B * self.lengths[docs].astype(np.float64) / (avgdl or 1.0))
            scores[docs] += (idf * (f * (K1 + 1)) / (f + norm)).astype(np.float32)
        if allowed is not None:
            keep = np.zeros(self.n, dtype=bool)
            keep[allowed[(allowed >= 0) & (allowed < self.n)]] = True
            scores[~keep] = 0.0
        cand = np.flatnonzero(scores)
        if len(cand) > depth:
            # everything scoring above the depth-th best, plus its ties, then an exact sort
            kth = np.partition(scores[cand], len(cand) - depth)[len(cand) - depth]
            cand = cand[scores[cand] >= kth]
        order = np.lexsort((cand, -scores[cand]))[:depth]
        return [(int(cand[i]), float(scores[cand[i]])) for i in order]
