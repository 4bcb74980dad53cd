"""The PostgreSQL writer streams: each call's rows are written as they come and BM25's corpus-wide
statistics are computed in SQL at `finish`, so a build cut into small windows writes the same version
as one in a single window, the postings equal the folder backend's BM25 arrays, and the writer's memory
does not grow with the number of chunks (a real server: tests/conftest.py `pg_server`)."""
from __future__ import annotations

import json
import random
import sqlite3
import tracemalloc

import numpy as np
import pytest

from fakes import FakeEmbedder
from askcolleague.index import Index
from askcolleague.index import bm25
from askcolleague.indexing.build import build
from askcolleague.models import AuthorRef, Chunk, Person
from askcolleague.settings import Settings

pg = pytest.importorskip("askcolleague.index.postgres")

from test_streaming_build import _messy_corpus  # noqa: E402  (the same messy corpus as the folder test)


def _sql(uri: str, sql: str, args=()):
    import psycopg

    with psycopg.connect(pg.Location.parse(uri).conninfo, autocommit=True) as c:
        cur = c.execute(sql, args)
        return cur.fetchall() if cur.description else None


def _live_schema(uri: str) -> str:
    return pg._version_schema(pg.Location.parse(uri), pg.PgBackend.live_name(uri))


def _pg_dump(uri: str, v: str | None = None) -> dict:
    v = v or _live_schema(uri)
    q = lambda sql: _sql(uri, sql)  # noqa: E731
    return {
        "postings": q(f'SELECT term, chunk, freq, impact FROM {v}.postings ORDER BY term COLLATE "C", chunk'),
        "heap": q(f"SELECT term, chunk FROM {v}.postings ORDER BY ctid"),  # (stored term-major, as FTS5 orders)
        "chunks": q(f"SELECT *, embedding::text FROM {v}.chunks ORDER BY id"),
        "docs": q(f"SELECT * FROM {v}.docs ORDER BY doc_id"),
        "sources": q(f"SELECT * FROM {v}.sources ORDER BY key"),
        "people": q(f"SELECT * FROM {v}.people ORDER BY person_id"),
        "links": q(f"SELECT * FROM {v}.chunk_people ORDER BY chunk, person_id, role"),
    }


def _folder_bm25(path) -> tuple[list, dict, np.ndarray, list]:
    """(postings [(term, chunk, freq, impact)] in the arrays' order, the manifest's lexical meta, the
    chunk lengths, [(id, chunk_id)]) of a folder index."""
    idx = Index.open(path, embedder=FakeEmbedder())
    try:
        d = idx.vdir / bm25.FOLDER
        terms = json.loads((d / "terms.json").read_text())
        offsets, docs, freqs, impacts = (np.load(d / f"{k}.npy") for k in ("offsets", "docs", "freqs", "impacts"))
        rows = [(terms[t], int(docs[j]), float(freqs[j]), float(impacts[j]))
                for t in range(len(terms)) for j in range(int(offsets[t]), int(offsets[t + 1]))]
        ids = [tuple(r) for r in idx.store.db.execute("SELECT id, chunk_id FROM chunks ORDER BY id")]
        return rows, idx.manifest["lexical"], np.load(d / "lengths.npy"), ids
    finally:
        idx.close()


def _same_postings(got: list, want: list) -> None:
    assert [(t, c, f) for t, c, f, _ in got] == [(t, c, f) for t, c, f, _ in want]
    a = np.array([i for *_, i in got], dtype=np.float64)
    b = np.array([i for *_, i in want], dtype=np.float64)
    assert np.allclose(a, b, rtol=1e-6, atol=0), float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


def test_small_windows_write_the_same_version_and_the_folders_postings(pg_uri, tmp_path, monkeypatch):
    _messy_corpus(tmp_path / "kb")
    e = FakeEmbedder()
    big = build([tmp_path / "kb"], pg_uri, embedder=e, warn=lambda m: None)
    folder = build([tmp_path / "kb"], tmp_path / "folder", embedder=e, warn=lambda m: None)
    monkeypatch.setenv("ASKCOLLEAGUE_BUILD_WINDOW", "3")
    small_uri = pg_uri + "_w3"
    small = build([tmp_path / "kb"], small_uri, embedder=e, warn=lambda m: None, settings=Settings.load())
    assert small.chunks == big.chunks == folder.chunks > 40 and small.deduplicated == big.deduplicated > 0
    a, b = _pg_dump(pg_uri), _pg_dump(small_uri)
    assert a["links"] and a["people"] and len(a["docs"]) > 30
    for k in a:
        assert a[k] == b[k], k
    ma, mb = pg.PgBackend.status(pg_uri), pg.PgBackend.status(small_uri)
    assert {**ma["lexical"], "table": None} == {**mb["lexical"], "table": None}

    # the folder backend's BM25 arrays: the same postings (its order too), lengths and statistics
    want, lexical, lengths, ids = _folder_bm25(tmp_path / "folder")
    _same_postings(a["postings"], want)
    assert a["heap"] == [(t, c) for t, c, *_ in want]
    assert [(r[0], r[1]) for r in a["chunks"]] == ids
    cols = [r[0] for r in _sql(pg_uri, "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                                       "AND table_name = 'chunks' ORDER BY ordinal_position", [_live_schema(pg_uri)])]
    assert [r[cols.index("dl")] for r in a["chunks"]] == lengths.tolist()
    assert {k: v for k, v in ma["lexical"].items() if k != "table"} == \
        {k: v for k, v in lexical.items() if k != "folder"}
    assert ma["lexical"]["rows"] == big.chunks and ma["lexical"]["postings"] == len(want)


def _chunk(i: int, text: str, title: str = "", section: str | None = None) -> Chunk:
    return Chunk(chunk_id=f"d{i}::0::x", doc_id=f"d{i}", source=f"kb/d{i}.md", position=0, text=text,
                 embed_text=text, title=title, section=section, source_type="document",
                 authors=[AuthorRef(name=f"P{i % 7}")], n_tokens=len(text.split()))


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_batches_give_the_one_shot_postings(pg_uri):
    """Chunks written in uneven batches (one without any term: dl 0) against bm25.postings over all of
    them at once, as the one-shot writer computed them."""
    rnd = random.Random(5)
    words = "alpha beta gamma running runs ran naïve Größe café tab\tback\\slash x".split(" ")
    chunks = [_chunk(i, " ".join(rnd.choices(words, k=rnd.randint(1, 30))), rnd.choice(["", "Title", "Größe"]),
                     rnd.choice([None, "Running", "beta"])) for i in range(120)]
    chunks[17] = _chunk(17, "— … !!! ???")  # no term at all
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, tokenize='porter unicode61')")
    db.executemany("INSERT INTO chunks_fts(rowid, text, title, section) VALUES (?, ?, ?, ?)",
                   [(i, c.text, c.title, c.section) for i, c in enumerate(chunks)])
    arrays, meta = bm25.postings(db, len(chunks))
    assert arrays["lengths"][17] == 0
    vecs = _unit(len(chunks), 8, 1)
    w = pg.PgWriter(pg.Location.parse(pg_uri), None)
    w.begin(8)
    at = 0
    for size in (1, 7, 0, 50, 3, 59):
        w.add_chunks(at, chunks[at:at + size], [f"k{i}" for i in range(at, at + size)], vecs[at:at + size])
        at += size
    w.finish()
    try:
        got = _pg_dump(pg_uri, w.v)
        t, o = arrays["terms"], arrays["offsets"]
        want = [(t[k], int(arrays["docs"][j]), float(arrays["freqs"][j]), float(arrays["impacts"][j]))
                for k in range(len(t)) for j in range(int(o[k]), int(o[k + 1]))]
        _same_postings(got["postings"], want)
        assert got["heap"] == [(a, b) for a, b, *_ in want]
        assert [r[-3] for r in got["chunks"]] == arrays["lengths"].tolist()  # (dl; then embedding twice)
        assert w.lexical == meta
        assert not _sql(pg_uri, "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'postings_stage'", [w.v])
    finally:
        w.abort(None)
    assert not _sql(pg_uri, "SELECT 1 FROM pg_namespace WHERE nspname = %s", [w.v])


def test_one_row_per_key_the_last_across_calls(pg_uri):
    w = pg.PgWriter(pg.Location.parse(pg_uri), None)
    w.begin(8)

    def doc(i, title):
        return {"doc_id": f"d{i}", "source": "kb/a.md", "title": title, "source_type": "document", "groups": []}

    w.add_sources([("kb/a.md", "/x/a.md", "markdown", "h1", 1, 1, 1), ("kb/a.md", "/x/a.md", "markdown", "h2", 1, 1, 1)])
    w.add_sources([("kb/b.md", "/x/b.md", "markdown", "h3", 1, 1, 1, "error", "bad"), ("kb/a.md", "/x/a.md",
                   "markdown", "h4", 2, 2, 2)])
    w.add_docs([doc(0, "first"), doc(1, "one"), doc(0, "second")])
    w.add_docs([doc(0, "third")])
    w.add_chunks(0, [_chunk(0, "hello"), _chunk(1, "world")], ["k0", "k1"], _unit(2, 8, 2))
    w.add_links([(0, "p1", "author", 1.0), (0, "p1", "author", 0.5), (1, "p1", "author", 1.0)])
    w.add_links([(1, "p1", "author", 0.25), (1, "p2", "mentioned", 0.1)])
    w.add_people([Person(person_id="p1", name="One"), Person(person_id="p2", name="Two")])
    w.add_people([Person(person_id="p1", name="Uno")])
    w.finish()
    try:
        got = _pg_dump(pg_uri, w.v)
        assert [(r[0], r[3], r[7]) for r in got["sources"]] == [("kb/a.md", "h4", "ok"), ("kb/b.md", "h3", "error")]
        assert [(r[0], r[2]) for r in got["docs"]] == [("d0", "third"), ("d1", "one")]
        assert got["links"] == [(0, "p1", "author", 0.5), (1, "p1", "author", 0.25), (1, "p2", "mentioned", 0.1)]
        assert [(r[0], r[1]) for r in got["people"]] == [("p1", "Uno"), ("p2", "Two")]
    finally:
        w.abort(None)


def test_a_failed_call_drops_the_version(pg_uri):
    w = pg.PgWriter(pg.Location.parse(pg_uri), None)
    w.begin(8)
    w.add_chunks(0, [_chunk(0, "hello")], ["k0"], _unit(1, 8, 3))
    with pytest.raises(ValueError):
        w.add_chunks(5, [_chunk(5, "gap")], ["k5"], _unit(1, 8, 4))  # (ids must follow on)
    schema = pg.Location.parse(pg_uri).schema
    assert not _sql(pg_uri, "SELECT 1 FROM pg_namespace WHERE nspname = %s", [w.v])
    assert not _sql(pg_uri, f"SELECT 1 FROM {schema}.askc_versions WHERE name = %s", [w.name])


def test_the_writers_memory_does_not_grow_with_the_chunks(pg_uri):
    """20 batches of 1000 chunks: the Python memory the writer holds after 20 is what it held after 5
    (holding the rows, as it once did, would be 4×), and its peak (a batch at a time) stays put. (`finish`
    is SQL only: N, avgdl and the postings count are three numbers; it is left out to keep this quick.)"""
    vocab = [f"w{i}" for i in range(3000)]
    rnd = random.Random(9)
    w = pg.PgWriter(pg.Location.parse(pg_uri), None)
    w.begin(16)
    seen = {}
    tracemalloc.start()
    try:
        for b in range(20):
            first = b * 1000
            chunks = [_chunk(first + j, " ".join(rnd.choices(vocab, k=20))) for j in range(1000)]
            w.add_chunks(first, chunks, [f"k{first + j}" for j in range(1000)], _unit(1000, 16, b))
            del chunks
            if b + 1 in (5, 20):
                seen[b + 1] = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        w.abort(None)
    (now5, peak5), (now20, peak20) = seen[5], seen[20]
    print(f"writer memory after 5 batches {now5} B (peak {peak5}), after 20 {now20} B (peak {peak20})")
    assert now20 < now5 + 500_000, (now5, now20)
    assert peak20 < peak5 * 1.25 + 1_000_000, (peak5, peak20)


def test_interrupt_stops_the_statement_under_way(pg_uri):
    import threading
    import time

    w = pg.PgWriter(pg.Location.parse(pg_uri), None)
    w.begin(8)
    got: list = []

    def slow():
        try:
            w._do(lambda: w._conn.execute("SELECT pg_sleep(30)"))
        except BaseException as e:  # noqa: BLE001
            got.append(e)

    t = threading.Thread(target=slow)
    t0 = time.perf_counter()
    t.start()
    time.sleep(0.5)
    w.interrupt()
    t.join(10)
    assert not t.is_alive() and time.perf_counter() - t0 < 10
    assert got and getattr(got[0], "sqlstate", None) == "57014"  # query_canceled
    assert not _sql(pg_uri, "SELECT 1 FROM pg_namespace WHERE nspname = %s", [w.v])  # (and the version dropped)
