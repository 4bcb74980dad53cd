"""The storage seam's contract (index/base.py), run against every backend in BACKENDS — the folder
and PostgreSQL + pgvector (a real server, tests/conftest.py `pg_server`): a new backend adds a factory
here and must pass the same tests.

- exact dense search equals a numpy brute force over the stored vectors;
- a selection (filters, access groups) restricts every search to visible chunks, and a search for k
  returns k of them whenever k are visible;
- BM25 scores equal the reference (SQLite FTS5's bm25() over the same rows, built here);
- people counts and facets respect visibility;
- both backends hold the same chunks and rank alike.
"""
from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from askcolleague.index import open_index
from askcolleague.indexing.build import build
from askcolleague.search import Filters, Retriever
from askcolleague.text import question_words

TOPICS = ["payroll", "kubernetes", "firmware", "laptops", "travel", "security", "onboarding", "database"]
GROUPS = [[], [], ["finance"], ["hr"], ["finance", "hr"]]


def _corpus(root, n=60, seed=3):
    rnd = random.Random(seed)
    people = ["Ana Silva", "Bo Chen", "Cleo Park", "Dev Rao", "Eli Stone"]
    for i in range(n):
        topic = rnd.choice(TOPICS)
        groups = GROUPS[i % len(GROUPS)]
        author = people[i % len(people)]
        words = " ".join(rnd.choice(TOPICS + ["policy", "request", "approve", "deploy", "review"]) for _ in range(40))
        fm = f"---\ntitle: Note {i} on {topic}\nauthor: {author}\n" + (f"groups: [{', '.join(groups)}]\n" if groups else "") + "---\n"
        (root / f"note{i:03d}.md").write_text(f"{fm}\n# {topic.title()}\n\nAbout {topic}: {words}.\n")


def folder_backend(tmp_path, embedder):
    root = tmp_path / "kb"
    root.mkdir()
    _corpus(root)
    build([root], tmp_path / "idx", embedder=embedder, warn=lambda m: None)
    return open_index(tmp_path / "idx", embedder=embedder)


def postgres_backend(tmp_path, embedder, request):
    uri = request.getfixturevalue("pg_server") + "&schema=contract_" + tmp_path.name[-8:].lower().replace("-", "_")
    root = tmp_path / "kb"
    root.mkdir()
    _corpus(root)
    build([root], uri, embedder=embedder, warn=lambda m: None)
    return open_index(uri, embedder=embedder)


BACKENDS = {"folder": folder_backend, "postgresql": postgres_backend}


@pytest.fixture(params=sorted(BACKENDS), scope="module")
def backend(request, tmp_path_factory):
    from fakes import FakeEmbedder

    make = BACKENDS[request.param]
    args = (request,) if make is not folder_backend else ()
    idx = make(tmp_path_factory.mktemp(request.param), FakeEmbedder(), *args)
    yield idx
    idx.close()


def _visible_ids(idx, groups):
    return {r["id"] for r in idx.store.chunk_rows() if not r["groups"] or set(r["groups"]) & set(groups)}


def _fts5_reference(idx, words, k, ids=None):
    """SQLite FTS5's own bm25() over the backend's rows (those in `ids`, else all): the reference."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(text, title, section, tokenize='porter unicode61')")
    db.executemany("INSERT INTO f(rowid, text, title, section) VALUES (?, ?, ?, ?)",
                   [(r["id"], r["text"], r["title"], r["section"]) for r in idx.store.chunk_rows()
                    if ids is None or r["id"] in ids])
    mq = " OR ".join(f'"{w}"' for w in words)
    return [(int(i), float(s)) for i, s in db.execute(
        "SELECT rowid, -bm25(f, 1.0, 0.5, 0.5) FROM f WHERE f MATCH ? ORDER BY bm25(f, 1.0, 0.5, 0.5), rowid LIMIT ?",
        (mq, k))]


def test_dense_search_is_exact(backend):
    ids, vecs = backend.vectors.all()
    rnd = np.random.default_rng(0)
    for _ in range(10):
        q = rnd.normal(size=vecs.shape[1]).astype(np.float32)
        q /= np.linalg.norm(q)
        got = backend.vectors.search(q, 10)
        scores = vecs @ q
        want = ids[np.argsort(-scores, kind="stable")[:10]]
        assert [i for i, _ in got] == want.tolist()
        assert np.allclose([s for _, s in got], np.sort(scores)[::-1][:10], atol=1e-5)
        assert all(np.isclose(backend.vectors.cosine(q, [i])[i], s, atol=1e-5) for i, s in got[:3])


@pytest.mark.parametrize("groups", [[], ["finance"], ["hr"], ["finance", "hr"]])
def test_selections_return_only_visible_chunks_and_k_of_them(backend, groups):
    visible = _visible_ids(backend, groups)
    allowed = backend.store.select(Filters(groups=groups))
    assert set(backend.store.ids(allowed).tolist()) == visible
    assert backend.store.admits(allowed, range(len(backend.vectors) + 3)) == visible
    q = backend.embedder.embed_batch(["kubernetes payroll"])[0]
    for k in (1, 5, len(visible), len(visible) + 5):
        dense = backend.vectors.search(q, k, allowed)
        assert {i for i, _ in dense} <= visible and len(dense) == min(k, len(visible))
    words = question_words("kubernetes payroll firmware")
    lex = backend.bm25.search(words, 10, allowed, visible=backend.visibility(groups))
    assert lex and {i for i, _ in lex} <= visible
    # statistics over the visible chunks only: FTS5's bm25() over a table holding only those
    want = _fts5_reference(backend, words, 10, visible)
    assert [i for i, _ in lex] == [i for i, _ in want]
    assert np.allclose([s for _, s in lex], [s for _, s in want], rtol=1e-4)
    hits = Retriever(backend).search("payroll policy", k=8, filters=Filters(groups=groups), diversify=False)
    assert hits and {h.id for h in hits} <= visible and len(hits) == min(8, len(visible))


def test_bm25_equals_the_reference(backend):
    for query in ["kubernetes deploy", "payroll approve review", "firmware laptops security policy"]:
        words = question_words(query)
        got = backend.bm25.search(words, 15, None)
        want = _fts5_reference(backend, words, 15)
        assert [i for i, _ in got][:10] == [i for i, _ in want][:10]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-4)


@pytest.mark.parametrize("groups", [[], ["finance"], ["finance", "hr"]])
def test_people_counts_and_facets_respect_visibility(backend, groups):
    rows = [r for r in backend.store.chunk_rows() if r["id"] in _visible_ids(backend, groups)]
    counts = backend.store.people_counts(groups)
    links = backend.store.links_for([r["id"] for r in rows])
    authored: dict[str, set[str]] = {}  # person → the visible documents they wrote
    for r in rows:
        for pid, role, _ in links.get(r["id"], []):
            if role == "author":
                authored.setdefault(pid, set()).add(r["doc_id"])
    assert {pid: c.get("document", 0) for pid, c in counts.items()} == {pid: len(d) for pid, d in authored.items()}
    types, names = backend.store.facets(groups)
    assert types == {r["source_type"] for r in rows}
    assert names == {backend.store.person(pid).name for pid in authored}
    passages, docs = backend.store.visible_totals(groups)
    assert (passages, docs) == (len(rows), len({r["doc_id"] for r in rows}))


def test_a_selective_filter_still_returns_k(backend, monkeypatch):
    """A filter that keeps few chunks (one author, one tag-less type) still gives k results when k are
    visible, through the backend's approximate path too (PostgreSQL: HNSW with iterative scan)."""
    if "postgres" in type(backend).__module__:
        import askcolleague.index.postgres as pg

        monkeypatch.setattr(pg, "EXACT_MAX", 5)  # the HNSW path, even for this small index
    pids = backend.store.person_ids("Cleo Park")
    f = Filters(person="Cleo Park", groups=["finance"])
    allowed = backend.store.select(f, pids)
    ids = set(backend.store.ids(allowed).tolist())
    assert 3 <= len(ids) < len(backend.vectors) // 3
    q = backend.embedder.embed_batch(["travel security"])[0]
    for k in (1, 3, len(ids), len(ids) + 4):
        got = backend.vectors.search(q, k, allowed)
        assert {i for i, _ in got} <= ids and len(got) == min(k, len(ids))
    ids_all, vecs = backend.vectors.all()
    keep = np.isin(ids_all, list(ids))
    want = np.sort(vecs[keep] @ q)[::-1][:3]  # (scores: the fake corpus has exact ties)
    assert np.allclose([s for _, s in backend.vectors.search(q, 3, allowed)], want, atol=1e-5)


def test_backends_hold_the_same_index(request, tmp_path_factory):
    """The same corpus built into each backend: the same chunk ids, texts and links; hybrid search over
    them ranks alike (vectors stored at half precision in PostgreSQL may swap near-ties)."""
    from fakes import FakeEmbedder

    built = {}
    for name, make in sorted(BACKENDS.items()):
        args = (request,) if make is not folder_backend else ()
        built[name] = make(tmp_path_factory.mktemp(f"same-{name}"), FakeEmbedder(), *args)
    try:
        rows = {n: [(r["id"], r["chunk_id"], r["text"], r["groups"]) for r in idx.store.chunk_rows()]
                for n, idx in built.items()}
        first = next(iter(rows.values()))
        assert all(r == first for r in rows.values())
        links = {n: idx.store.links_for(range(len(first))) for n, idx in built.items()}
        assert all(v == next(iter(links.values())) for v in links.values())
        for query in ("payroll approve", "kubernetes deploy review", "laptops"):
            got = {n: [h.id for h in Retriever(idx).search(query, k=10, filters=Filters(groups=["hr"]))]
                   for n, idx in built.items()}
            a, b = got.values()
            assert len(set(a[:10]) & set(b[:10])) >= 8
    finally:
        for idx in built.values():
            idx.close()
