"""The in-memory BM25 postings against SQLite FTS5's own bm25(), on random corpora and the demo index."""
from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from askcolleague.index import bm25 as lexical
from askcolleague.index import Index
from askcolleague.search import Filters, Retriever
from askcolleague.text import question_words

WORDS = ("deploy deployment deploying rollback canary release pipeline runbook oncall pager incident "
         "postgres replica vacuum index query latency budget error rate kafka topic consumer offset "
         "naïve café résumé straße über 2024 v1.2 api_key").split()


def _corpus(seed: int, n: int) -> list[tuple[str, str, str]]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        text = " ".join(rnd.choice(WORDS[: rnd.randint(5, len(WORDS))]) for _ in range(rnd.randint(0, 60)))
        title = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 4)))
        section = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 3))) if rnd.random() < 0.5 else ""
        rows.append((text, title, section))
    return rows


def _fts_db(rows) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE chunks(id INTEGER PRIMARY KEY, text TEXT, title TEXT, section TEXT)")
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, content='chunks', "
               "content_rowid='id', tokenize='porter unicode61')")
    db.executemany("INSERT INTO chunks VALUES (?,?,?,?)", [(i, *r) for i, r in enumerate(rows)])
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    return db


def _fts5_reference(db, words: list[str]) -> dict[int, float]:
    """Every matching row's score from SQLite itself (the brute-force reference)."""
    mq = " OR ".join(f'"{w}"' for w in words)
    sql = f"SELECT rowid, -bm25(chunks_fts, {lexical.bm25_sql_weights()}) FROM chunks_fts WHERE chunks_fts MATCH ?"
    return {int(r): float(s) for r, s in db.execute(sql, (mq,))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_equal_fts5_bm25(tmp_path, seed):
    rows = _corpus(seed, 400)
    db = _fts_db(rows)
    meta = lexical.build(db, len(rows), tmp_path / "bm25")
    assert meta["rows"] == 400 and meta["postings"] > 0
    lex = lexical.Bm25Index(tmp_path / "bm25")
    rnd = random.Random(seed)
    for _ in range(40):
        words = list(dict.fromkeys(rnd.choice(WORDS).lower() for _ in range(rnd.randint(1, 5))))
        words = [w for w in words if "." not in w and "_" not in w]  # (FTS5 splits those: phrases)
        if not words:
            continue
        ref = _fts5_reference(db, words)
        got = dict(lex.search(words, depth=10_000))
        assert set(got) == set(ref), words
        for i, s in ref.items():
            assert got[i] == pytest.approx(s, rel=2e-5, abs=1e-6), (words, i)
        # the top of the ranking is the reference's, best first
        top = lex.search(words, depth=10)
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
        best = sorted(ref.values(), reverse=True)[:10]
        assert [s for _, s in top] == pytest.approx(best, rel=2e-5, abs=1e-6)


def test_allowed_rows_and_unknown_terms(tmp_path):
    rows = _corpus(7, 200)
    db = _fts_db(rows)
    lexical.build(db, len(rows), tmp_path / "bm25")
    lex = lexical.Bm25Index(tmp_path / "bm25")
    ref = _fts5_reference(db, ["kafka", "canary"])
    allowed = np.array(sorted(ref)[::3], dtype=np.int64)
    got = lex.search(["kafka", "canary"], depth=1000, allowed=allowed)
    assert {i for i, _ in got} == set(allowed.tolist())
    assert lex.search(["zzzunknownword"], depth=10) == []
    assert lex.search(["kafka"], depth=10, allowed=np.zeros(0, dtype=np.int64)) == []


def test_empty_corpus(tmp_path):
    db = _fts_db([])
    meta = lexical.build(db, 0, tmp_path / "bm25")
    assert meta["postings"] == 0
    assert lexical.Bm25Index(tmp_path / "bm25").search(["kafka"], depth=5) == []


def test_fts5_terms_are_fts5_stems():
    assert lexical.fts5_terms(["deployment", "Café", "running"]) == ["deploy", "cafe", "run"]
    assert lexical.fts5_terms(["on-call"]) == ["on", "call"]
    assert lexical.fts5_terms([]) == []


def test_demo_index_ranks_as_fts5(demo_index):
    """On the real demo index, the postings give SQLite's BM25 ranking for real questions."""
    idx = Index.open(demo_index)
    try:
        assert idx.bm25 is not None and (idx.vdir / "bm25" / "docs.npy").is_file()
        assert idx.manifest["lexical"]["postings"] == idx.bm25.meta["postings"]
        r = Retriever(idx)
        questions = ["How do I roll back a bad deploy?", "Who knows about Postgres replication lag?",
                     "what is the parental leave policy", "handover checklist for the payments team"]
        for q in questions:
            words = question_words(q)
            ref = r.bm25_fts5(words, 20, None)
            got = r.bm25(q, 20, None)
            assert ref and [s for _, s in got] == pytest.approx([s for _, s in ref], rel=2e-5), q
            last = ref[-1][1]  # (rows tied with the 20th may be cut differently)
            assert {i for i, s in got if s > last * (1 + 1e-4)} == {i for i, s in ref if s > last * (1 + 1e-4)}, q
        allowed = r.allowed(Filters(source_types=["document"]))
        got = r.bm25("deploy rollback", 10, allowed)
        assert got and all(i in set(allowed.tolist()) for i, _ in got)
    finally:
        idx.close()


def test_index_without_postings_uses_fts5_and_damaged_postings_say_rebuild(demo_index, tmp_path):
    import shutil

    from askcolleague.errors import IndexFormatError
    from askcolleague.index import current_version

    idx = Index.open(demo_index)
    try:
        want = Retriever(idx).bm25("roll back a bad deploy", 10, None)
    finally:
        idx.close()
    old = tmp_path / "old"
    shutil.copytree(demo_index, old)
    shutil.rmtree(current_version(old) / "bm25")  # as built by an earlier version
    idx = Index.open(old)
    try:
        assert idx.bm25 is None
        got = Retriever(idx).bm25("roll back a bad deploy", 10, None)
        assert [i for i, _ in got] == [i for i, _ in want]
    finally:
        idx.close()
    bad = tmp_path / "bad"
    shutil.copytree(demo_index, bad)
    docs = current_version(bad) / "bm25" / "docs.npy"
    docs.write_bytes(docs.read_bytes()[:20])
    idx = Index.open(bad)
    try:
        with pytest.raises(IndexFormatError, match=r"bm25: unreadable .*index build --rebuild"):
            Retriever(idx).bm25("roll back a bad deploy", 10, None)
    finally:
        idx.close()


@pytest.mark.parametrize("seed", [4, 5])
def test_visible_statistics_equal_fts5_over_the_visible_rows(tmp_path, seed):
    """With some chunks hidden, the scores are FTS5's bm25() over a table of the visible rows alone."""
    rows = _corpus(seed, 300)
    lexical.build(_fts_db(rows), len(rows), tmp_path / "bm25")
    lex = lexical.Bm25Index(tmp_path / "bm25")
    assert lex.visible_statistics
    rnd = random.Random(seed)
    visible = np.array([rnd.random() < 0.4 for _ in rows])
    ref_db = sqlite3.connect(":memory:")
    ref_db.execute("CREATE TABLE chunks(id INTEGER PRIMARY KEY, text TEXT, title TEXT, section TEXT)")
    ref_db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, content='chunks', "
                   "content_rowid='id', tokenize='porter unicode61')")
    ref_db.executemany("INSERT INTO chunks VALUES (?,?,?,?)", [(i, *r) for i, r in enumerate(rows) if visible[i]])
    ref_db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    for _ in range(30):
        words = [w for w in dict.fromkeys(rnd.choice(WORDS).lower() for _ in range(rnd.randint(1, 4)))
                 if "." not in w and "_" not in w]
        if not words:
            continue
        ref = _fts5_reference(ref_db, words)
        got = dict(lex.search(words, depth=10_000, visible=visible, allowed=np.flatnonzero(visible)))
        assert set(got) == set(ref), words
        for i, s in ref.items():
            assert got[i] == pytest.approx(s, rel=2e-5, abs=1e-6), (words, i)
    # everything visible: the precomputed impacts, unchanged
    words = ["kafka", "deploy"]
    assert lex.search(words, 50, visible=np.ones(len(rows), dtype=bool)) == lex.search(words, 50)


def test_hidden_words_do_not_reorder_visible_passages(tmp_path, fake_embedder):
    """The BM25 side channel: an asker's ranking of two visible passages is the one an index of
    only the visible files gives, whatever words the hidden passages contain."""
    from askcolleague.answer import Assistant
    from askcolleague.indexing.build import build

    def write(root, hidden: bool):
        root.mkdir(parents=True)
        (root / "a.md").write_text("# Consumer lag\n\nThe kafka consumer lag alarm fires when the kafka "
                                   "offset falls behind by a minute.\n")
        (root / "b.md").write_text("# Offsets\n\nReset the offset of a consumer group with the offset tool; "
                                   "commit the offset after every batch.\n")
        for i in range(20):
            (root / f"note{i}.md").write_text(f"# Note {i}\n\nThe canteen menu for week {i} has soup and bread.\n")
        if hidden:
            for i in range(30):
                (root / f"secret{i}.md").write_text(f"---\ngroups: [finance]\n---\n# Deal {i}\n\nThe kafka "
                                                    f"cluster bill for deal {i}: kafka, kafka and more kafka.\n")
    orders = {}
    for name, hidden in (("all", True), ("visible-only", False)):
        write(tmp_path / name, hidden)
        build([tmp_path / name], tmp_path / f"idx-{name}", embedder=fake_embedder, warn=lambda m: None)
        asst = Assistant.from_index(tmp_path / f"idx-{name}", embedder=fake_embedder)
        hits = asst.retriever.search("kafka offset", k=5, mode="bm25",
                                     filters=Filters(groups=["engineering"]))
        orders[name] = [(h.row["title"], round(h.bm25, 4)) for h in hits if h.row["title"] in ("Consumer lag", "Offsets")]
        unfiltered = asst.retriever.search("kafka offset", k=10, mode="bm25")
        orders[name + "-global"] = [h.row["title"] for h in unfiltered if not h.row["groups"]]
    assert orders["all"] == orders["visible-only"]
    assert [t for t, _ in orders["all"]] == ["Consumer lag", "Offsets"]
    # (corpus-wide statistics, as before the fix, flip them: the hidden passages make 'offset' common)
    # corpus-wide statistics (no access control) flip them: the hidden passages make 'kafka' common
    assert orders["all-global"] == ["Offsets", "Consumer lag"]
