"""Index build/update: manifest, incremental embedding, atomic swap, locks, model checks, bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fakes import FakeEmbedder, fakes_env
from askcolleague.errors import IndexLockedError, ModelMismatchError, NothingIndexedError
from askcolleague.index import Index, IndexLock, current_version, status
from askcolleague.indexing.build import build
from askcolleague.settings import Settings


def _md(title: str, author: str, body: str) -> str:
    return f"---\ntitle: {title}\nauthor: {author}\ndate: 2025-01-15\ntags: [ops]\n---\n\n# {title}\n\n{body}\n"


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "kb"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "laptops.md").write_text(_md(
        "Laptop requests", "Dana Lee <dana@acme.test>",
        "## Ordering\n\nRequest a laptop in the ServiceDesk portal. Delivery takes five business days."))
    (root / "docs" / "travel.md").write_text(_md(
        "Travel policy", "Sam Ortiz <sam@acme.test>",
        "## Booking\n\nBook flights in the travel portal two weeks ahead. Economy class for trips under six hours."))
    (root / "docs" / "vpn.txt").write_text("VPN setup\n\nInstall the WireGuard client and import the profile from the IT portal.\n")
    thread = {"id": "t1", "title": "Which database for events?", "url": "https://forum.acme.test/t/1",
              "author": "Ann Smith <ann@acme.test>", "date": "2025-02-01",
              "body": "We need a store for event data. Postgres or ClickHouse?", "tags": ["data"],
              "comments": [{"id": "c1", "author": "Bob Stone <bob@acme.test>", "date": "2025-02-02",
                            "body": "ClickHouse handled 2 billion rows in our benchmark.", "comments": []}]}
    (root / "forum.jsonl").write_text(json.dumps(thread) + "\n")
    (root / "people.yaml").write_text(textwrap.dedent("""\
        people:
          - name: Dana Lee
            email: DANA@acme.test
            title: IT Lead
            team: IT
            expertise: [laptops, hardware]
          - name: Bob Stone
            email: bob@acme.test
            team: Data
    """))
    return root


def _build(corpus, path, emb, **kw):
    return build([corpus], path, embedder=emb, warn=lambda m: None, **kw)


def test_build_writes_self_describing_index(corpus, tmp_path):
    emb = FakeEmbedder()
    rep = _build(corpus, tmp_path / "idx", emb)
    assert rep.sources_indexed == 4 and not rep.skipped
    m = status(tmp_path / "idx")
    assert m["format_version"] == 1 and m["model"]["id"] == emb.model_id and m["model"]["dim"] == emb.dim
    assert m["chunker"]["max_tokens"] == 200
    assert {s["key"] for s in m["sources"]} == {"kb/docs/laptops.md", "kb/docs/travel.md", "kb/docs/vpn.txt", "kb/forum.jsonl"}
    assert all(len(s["hash"]) == 64 for s in m["sources"])
    assert m["counts"]["profiles"] == 2
    idx = Index.open(tmp_path / "idx", embedder=emb)
    assert idx.faiss.ntotal == idx.store.count("chunks") == m["counts"]["chunks"]
    # people: profiles + an author without profile, linked by email case-insensitively
    people = {p.name: p for p in idx.store.people()}
    assert {"Dana Lee", "Bob Stone", "Sam Ortiz", "Ann Smith"} <= set(people)
    assert people["Dana Lee"].has_profile and not people["Sam Ortiz"].has_profile
    counts = idx.store.people_counts()
    assert counts[people["Bob Stone"].person_id] == {"comment": 1}
    assert counts[people["Ann Smith"].person_id] == {"post": 1}


def test_update_embeds_only_what_changed(corpus, tmp_path):
    emb = FakeEmbedder()
    path = tmp_path / "idx"
    first = _build(corpus, path, emb)
    v1 = current_version(path)

    emb.texts_embedded = 0
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert emb.texts_embedded == 0 and rep.embedded == 0 and not rep.changed
    assert current_version(path) == v1

    (corpus / "docs" / "travel.md").write_text(_md("Travel policy", "Sam Ortiz <sam@acme.test>",
                                                   "## Booking\n\nBook flights four weeks ahead now."))
    idx = Index.open(path, embedder=emb)
    travel_chunks = len(idx.store.chunks_of_source("kb/docs/travel.md"))
    idx.close()
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert rep.changed and 0 < rep.embedded <= travel_chunks + 1
    assert emb.texts_embedded == rep.embedded
    assert rep.sources_reused == 3

    (corpus / "docs" / "vpn.txt").unlink()
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert rep.embedded == 0
    idx = Index.open(path, embedder=emb)
    assert not idx.store.chunks_of_source("kb/docs/vpn.txt")
    assert idx.faiss.ntotal == idx.store.count("chunks") == rep.chunks < first.chunks + 2
    texts = " ".join(r["text"] for r in idx.store.chunk_rows())
    assert "WireGuard" not in texts and "four weeks" in texts


def test_lock_blocks_second_writer(corpus, tmp_path):
    path = tmp_path / "idx"
    with IndexLock(path):
        with pytest.raises(IndexLockedError, match="--wait"):
            _build(corpus, path, FakeEmbedder())


def test_model_mismatch_says_rebuild(corpus, tmp_path):
    path = tmp_path / "idx"
    _build(corpus, path, FakeEmbedder(dim=64))
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        Index.open(path, embedder=FakeEmbedder(dim=32))
    with pytest.raises(ModelMismatchError, match="--rebuild"):
        _build(corpus, path, FakeEmbedder(dim=32))
    rep = _build(corpus, path, FakeEmbedder(dim=32), rebuild=True)
    assert rep.reused_vectors == 0 and Index.open(path, embedder=FakeEmbedder(dim=32)).faiss.d == 32


SLOW_BUILD = """
import sys, time
from fakes import FakeEmbedder
from askcolleague.indexing.build import build

class Slow(FakeEmbedder):
    def _embed(self, texts):
        print("embedding", flush=True)
        time.sleep(0.5)
        return super()._embed(texts)

build([sys.argv[1]], sys.argv[2], embedder=Slow(), rebuild=True, warn=lambda m: None)
"""


def test_killed_build_leaves_previous_index_loadable(corpus, tmp_path):
    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    before = current_version(path)
    n_before = Index.open(path, embedder=emb).store.count("chunks")
    (corpus / "docs" / "extra.md").write_text(_md("Extra", "Dana Lee", "More text. " * 200))
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(corpus), str(path)],
                                stdout=subprocess.PIPE, text=True, env={**fakes_env(), "ASKCOLLEAGUE_BATCH_SIZE": "1"})
        assert proc.stdout.readline().strip() == "embedding"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert current_version(path) == before
        idx = Index.open(path, embedder=emb)
        assert idx.store.count("chunks") == n_before == idx.faiss.ntotal
        idx.close()
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert rep.changed and current_version(path) != before
    assert not any(p.name.endswith(".tmp") for p in path.iterdir())  # leftovers are cleaned by the next build


def test_bad_files_are_skipped_with_reasons(corpus, tmp_path):
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "binary.md").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (bad / "latin1.txt").write_bytes("кафе крем".encode("cp1251"))  # (short Western text is read: test_encoding_short.py)
    (bad / "empty.md").write_text("")
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 garbage without xref")
    (bad / "broken.xml").write_text("<rss><channel><item>")
    (bad / "broken.jsonl").write_text('{"id": 1, "title": "x", "body": "ok"}\n{not json\n')
    (bad / "image.png").write_bytes(b"\x89PNG\r\n")
    (bad / "big.txt").write_text("word " * 400_000)
    warnings = []
    rep = build([corpus], tmp_path / "idx", embedder=FakeEmbedder(), warn=warnings.append,
                settings=Settings.load(max_file_mb=1.0))
    skipped = {Path(s.path).name: s.reason for s in rep.skipped}
    assert set(skipped) == {"binary.md", "latin1.txt", "empty.md", "broken.pdf", "broken.xml", "broken.jsonl",
                            "image.png", "big.txt"}
    assert "UTF-8" in skipped["latin1.txt"] and "binary" in skipped["binary.md"]
    assert "empty" in skipped["empty.md"] and "limit" in skipped["big.txt"]
    assert "unsupported" in skipped["image.png"]
    assert all(any(name in w for w in warnings) for name in skipped)
    assert rep.sources_indexed == 4
    assert "4 indexed, 8 skipped" in rep.summary()


def test_failed_file_keeps_previous_version(corpus, tmp_path):
    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    (corpus / "docs" / "laptops.md").write_bytes(b"\xff\xfe bad utf8 \xff")
    rep = build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert [Path(k.path).name for k in rep.kept] == ["laptops.md"]
    texts = " ".join(r["text"] for r in Index.open(path, embedder=emb).store.chunk_rows())
    assert "ServiceDesk" in texts


def test_nothing_indexed_is_an_error_and_keeps_old_index(corpus, tmp_path):
    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    before = current_version(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.md").write_text("")
    with pytest.raises(NothingIndexedError, match="unchanged"):
        build([empty], path, embedder=emb, warn=lambda m: None)
    assert current_version(path) == before


def test_forget_person_for_good(corpus, tmp_path):
    from askcolleague.indexing.forget import forget
    from askcolleague.indexing.build import read_forgotten

    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    forget(path, "dana@acme.test", embedder=emb, warn=lambda m: None)
    idx = Index.open(path, embedder=emb)
    names = {p.name for p in idx.store.people()}
    assert "Dana Lee" not in names
    texts = " ".join(r["text"] for r in idx.store.chunk_rows())
    assert "ServiceDesk" in texts and "IT Lead" not in texts  # content stays, profile gone
    idx.close()
    # an update re-reads the sources, which still mention Dana: she stays forgotten
    build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert "Dana Lee" not in {p.name for p in Index.open(path, embedder=emb).store.people()}
    assert read_forgotten(path)[0]["name"] == "Dana Lee"


def test_forget_with_content(corpus, tmp_path):
    from askcolleague.indexing.forget import forget

    from askcolleague.feedback import FeedbackStore, export

    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    idx = Index.open(path, embedder=emb)
    bob = [r["chunk_id"] for r in idx.store.chunk_rows() if "2 billion" in r["text"]]
    other = [r["chunk_id"] for r in idx.store.chunk_rows() if "ServiceDesk" in r["text"]]
    idx.close()
    with FeedbackStore.for_index(path) as fb:
        fb.add("up", "which db?", "ClickHouse [1]", chunk_ids=bob)
        fb.add("wrong_source", "laptop?", "ServiceDesk [1]", chunk_ids=other, chunk_id=other[0])
    forget(path, "Bob Stone", with_content=True, embedder=emb, warn=lambda m: None)
    assert [r["question"] for r in export(path)] == ["laptop?"]
    idx = Index.open(path, embedder=emb)
    texts = " ".join(r["text"] for r in idx.store.chunk_rows())
    assert "2 billion rows" not in texts and "Postgres or ClickHouse" in texts
    assert "Bob Stone" not in {p.name for p in idx.store.people()}
    assert idx.faiss.ntotal == idx.store.count("chunks")


def test_live_assistant_switches_after_rebuild(corpus, tmp_path):
    import threading

    from askcolleague.answer import LiveAssistant

    path = tmp_path / "idx"
    emb = FakeEmbedder()
    _build(corpus, path, emb)
    live = LiveAssistant(path)  # the manifest's model id "fake:…" loads the fake embedder again
    before = live.get().index.vdir
    errors, answers = [], []

    def ask_loop():
        for _ in range(40):
            try:
                answers.append(live.get().ask("ServiceDesk laptop", mode="bm25"))
            except Exception as e:  # a failed request is a test failure
                errors.append(e)

    t = threading.Thread(target=ask_loop)
    t.start()
    (corpus / "docs" / "new.md").write_text(_md("Monitors", "Dana Lee", "## Monitors\n\nAsk IT for a 27-inch monitor."))
    build(None, path, embedder=emb, update=True, warn=lambda m: None)
    t.join()
    assert not errors and answers
    assert live.get().index.vdir == current_version(path) != before
    assert live.get().ask("27-inch monitor", mode="bm25").citations
