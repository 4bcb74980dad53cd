"""The storage seam's contract (index/base.py), run against every backend in BACKENDS: a new backend
adds a factory here and must pass the same tests.

- exact dense search equals a numpy brute force over the stored vectors;
- a selection (filters, access groups) restricts every search to visible chunks, and a search for k
  returns k of them whenever k are visible;
- BM25 scores equal the reference (SQLite FTS5's bm25());
- people counts and facets respect visibility.
"""
from __future__ import annotations

import random

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


BACKENDS = {"folder": folder_backend}


@pytest.fixture(params=sorted(BACKENDS), scope="module")
def backend(request, tmp_path_factory):
    from fakes import FakeEmbedder

    idx = BACKENDS[request.param](tmp_path_factory.mktemp(request.param), FakeEmbedder())
    yield idx
    idx.close()


def _visible_ids(idx, groups):
    return {r["id"] for r in idx.store.chunk_rows() if not r["groups"] or set(r["groups"]) & set(groups)}


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


@pytest.mark.parametrize("groups", [[], ["finance"], ["hr"], ["finance", "hr"]])
def test_selections_return_only_visible_chunks_and_k_of_them(backend, groups):
    visible = _visible_ids(backend, groups)
    allowed = backend.store.select(Filters(groups=groups))
    assert set(allowed.tolist()) == visible
    q = backend.embedder.embed_batch(["kubernetes payroll"])[0]
    for k in (1, 5, len(visible), len(visible) + 5):
        dense = backend.vectors.search(q, k, allowed)
        assert {i for i, _ in dense} <= visible and len(dense) == min(k, len(visible))
    words = question_words("kubernetes payroll firmware")
    lex = backend.bm25.search(words, 10, allowed, visible=np.isin(np.arange(len(backend.vectors)), list(visible)))
    assert lex and {i for i, _ in lex} <= visible
    hits = Retriever(backend).search("payroll policy", k=8, filters=Filters(groups=groups), diversify=False)
    assert hits and {h.id for h in hits} <= visible and len(hits) == min(8, len(visible))


def test_bm25_equals_the_reference(backend):
    for query in ["kubernetes deploy", "payroll approve review", "firmware laptops security policy"]:
        words = question_words(query)
        got = backend.bm25.search(words, 15, None)
        want = backend.store.bm25_fts5(words, 15, None, "1.0, 0.5, 0.5")
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
