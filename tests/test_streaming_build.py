"""The streaming build: files written as the vectors and postings arrive, equal to what the one-shot
writers made; a build cut into small windows equals one in a single window; a killed build resumes
from the vectors it had embedded; forgetting still holds when an identifier shows up late."""
from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys

import faiss
import numpy as np
import pytest

from fakes import FakeEmbedder, fakes_env
from askcolleague.index import Index, current_version
from askcolleague.index import bm25
from askcolleague.index.faiss import FaissVectors, FlatFileWriter, read_flat
from askcolleague.indexing import build as build_mod
from askcolleague.indexing.build import build
from askcolleague.settings import Settings


def test_vectors_file_is_faiss_own_serialisation(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1001, 24)).astype(np.float32)
    w = FlatFileWriter(tmp_path, 24)
    for a in range(0, 1001, 250):
        w.add(x[a:a + 250])
    w.close()
    ref = faiss.IndexIDMap2(faiss.IndexFlatIP(24))
    ref.add_with_ids(x, np.arange(1001, dtype=np.int64))
    assert (tmp_path / "vectors.faiss").read_bytes() == faiss.serialize_index(ref).tobytes()
    got = FaissVectors.read(tmp_path)
    assert got.search(x[17], 1)[0][0] == ref.search(x[17:18], 1)[1][0][0]
    ids, vecs = read_flat(tmp_path)
    assert (ids == np.arange(1001)).all() and np.array_equal(vecs, x)
    with pytest.raises(ValueError):
        FlatFileWriter(tmp_path / "..", 24).add(x[:, :5])


def test_read_flat_declines_other_files(tmp_path):
    ivf = faiss.IndexIDMap2(faiss.IndexHNSWFlat(8, 4))
    ivf.add_with_ids(np.ones((3, 8), np.float32), np.arange(3, dtype=np.int64))
    faiss.write_index(ivf, str(tmp_path / "vectors.faiss"))
    assert read_flat(tmp_path) is None
    (tmp_path / "vectors.faiss").write_bytes(b"IxM2" + b"\0" * 10)
    assert read_flat(tmp_path) is None


def test_streamed_postings_equal_the_in_memory_ones(tmp_path):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, tokenize='porter unicode61')")
    words = "alpha beta gamma delta running runs ran epsilon zeta eta theta iota kappa lambda naïve Größe".split()
    rnd = random.Random(3)
    n = 2500
    db.executemany("INSERT INTO chunks_fts(rowid, text, title, section) VALUES (?, ?, ?, ?)",
                   [(i, " ".join(rnd.choices(words, k=rnd.randint(0, 40))), rnd.choice(words), rnd.choice(words + [""]))
                    for i in range(n)])
    arrays, meta = bm25.postings(db, n)
    got = bm25.build(db, n, tmp_path / "bm25", block=333)  # many blocks
    assert got == meta
    for name in ("offsets", "docs", "impacts", "freqs", "lengths"):
        a = np.load(tmp_path / "bm25" / f"{name}.npy")
        assert a.dtype == arrays[name].dtype and np.array_equal(a, arrays[name]), name
    assert json.loads((tmp_path / "bm25" / "terms.json").read_text()) == arrays["terms"]
    assert bm25.Bm25Index.open(tmp_path).n == n


def _messy_corpus(root, n_threads: int = 30):
    """Threads with replies, quoted boilerplate repeated across threads, and a long Markdown page."""
    root.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(11)
    boiler = "This message may contain confidential information. If you received it in error, delete it."
    with open(root / "forum.jsonl", "w", encoding="utf-8") as f:
        for t in range(n_threads):
            f.write(json.dumps({
                "id": f"t{t}", "title": f"Question {t} about {rnd.choice(['VPN', 'laptops', 'Kafka', 'café'])}",
                "author": f"Person {t % 5} <p{t % 5}@acme.test>", "date": f"2025-03-{t % 27 + 1:02d}",
                "body": " ".join(rnd.choice(["setup", "fails", "after", "the", "update", "Größe", "timeout"])
                                 for _ in range(rnd.randint(5, 120))) + " " + boiler,
                "comments": [{"id": f"c{t}-{k}", "author": f"Person {(t + k + 1) % 7} <p{(t + k + 1) % 7}@acme.test>",
                              "body": f"Reply {k}: try restarting the agent. {boiler}"} for k in range(t % 4)]}) + "\n")
    (root / "guide.md").write_text("---\ntitle: Guide\nauthor: Dana Lee <dana@acme.test>\n---\n\n"
                                   + "\n\n".join(f"## Part {i}\n\n" + "Words of the guide. " * 60 for i in range(12)),
                                   encoding="utf-8")
    for copy in ("hr", "it"):  # the same page filed twice: its chunks are embedded once
        (root / copy).mkdir(exist_ok=True)
        (root / copy / "policy.md").write_text("---\ntitle: Security policy\n---\n\n## Scope\n\n"
                                               + "Lock your screen when you leave your desk. " * 40, encoding="utf-8")


def _dump(path):
    idx = Index.open(path, embedder=FakeEmbedder())
    try:
        db = idx.store.db
        chunks = [tuple(r) for r in db.execute("SELECT id, chunk_id, text, embed_text, embed_hash FROM chunks ORDER BY id")]
        links = sorted(tuple(r) for r in db.execute("SELECT * FROM chunk_people"))
        people = sorted(tuple(r) for r in db.execute("SELECT * FROM people"))
        docs = sorted(tuple(r) for r in db.execute("SELECT doc_id, title FROM docs"))
        ids, vecs = idx.vectors.all()
        bm = {k: np.load(idx.vdir / "bm25" / f"{k}.npy") for k in ("offsets", "docs", "impacts")}
        return {"chunks": chunks, "links": links, "people": people, "docs": docs, "ids": ids, "vecs": vecs, "bm": bm,
                "calibration": idx.manifest["abstain_calibration"]}
    finally:
        idx.close()


def test_small_windows_build_the_same_index(tmp_path, monkeypatch):
    _messy_corpus(tmp_path / "kb")
    big = build([tmp_path / "kb"], tmp_path / "big", embedder=FakeEmbedder(), warn=lambda m: None)
    monkeypatch.setenv("ASKCOLLEAGUE_BUILD_WINDOW", "3")
    small = build([tmp_path / "kb"], tmp_path / "small", embedder=FakeEmbedder(), warn=lambda m: None,
                  settings=Settings.load())
    assert small.chunks == big.chunks > 40 and small.deduplicated == big.deduplicated > 0
    assert small.embedded + small.deduplicated == small.chunks
    a, b = _dump(tmp_path / "big"), _dump(tmp_path / "small")
    for k in ("chunks", "links", "people", "docs", "calibration"):
        assert a[k] == b[k], k
    assert np.array_equal(a["ids"], b["ids"]) and np.allclose(a["vecs"], b["vecs"], atol=1e-6)
    assert all(np.array_equal(a["bm"][k], b["bm"][k]) for k in a["bm"])
    assert not (tmp_path / "small" / ".resume").exists()  # the resume cache goes once the build is published


KILLED = """
import sys, time
from fakes import FakeEmbedder
from askcolleague.indexing.build import build

class Slow(FakeEmbedder):
    def _embed(self, texts):
        print("embedding", len(texts), flush=True)
        time.sleep(0.3)
        return super()._embed(texts)

build([sys.argv[1]], sys.argv[2], embedder=Slow(), warn=lambda m: None)
"""


def test_a_killed_build_resumes_from_the_vectors_it_embedded(tmp_path):
    _messy_corpus(tmp_path / "kb", n_threads=60)
    env = {**fakes_env(), "ASKCOLLEAGUE_BATCH_SIZE": "4", "ASKCOLLEAGUE_BUILD_WINDOW": "8"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "kb"), str(tmp_path / "idx")],
                            stdout=subprocess.PIPE, text=True, env=env)
    seen = 0
    for line in proc.stdout:
        n = int(line.split()[1])
        seen += n if n <= 4 else 0  # (batches of chunks; not the calibration's 48 probe questions)
        if seen >= 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_version(tmp_path / "idx") is None  # nothing was published
    assert (tmp_path / "idx" / ".resume" / "keys.txt").is_file()
    rep = build([tmp_path / "kb"], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    assert rep.resumed >= 32 and rep.embedded + rep.resumed + rep.deduplicated == rep.chunks
    assert f"resumed {rep.resumed}" in rep.summary()
    assert not (tmp_path / "idx" / ".resume").exists()
    clean = build([tmp_path / "kb"], tmp_path / "clean", embedder=FakeEmbedder(), warn=lambda m: None)
    assert clean.resumed == 0
    a, b = _dump(tmp_path / "idx"), _dump(tmp_path / "clean")
    assert a["chunks"] == b["chunks"] and a["links"] == b["links"]
    assert np.allclose(a["vecs"], b["vecs"], atol=1e-6)
    manifest = json.loads((current_version(tmp_path / "idx") / "manifest.json").read_text())
    assert manifest["build"]["resumed"] == rep.resumed


def test_resume_cache_of_another_model_is_not_used(tmp_path):
    _messy_corpus(tmp_path / "kb", n_threads=5)
    from askcolleague.indexing.resume import ResumeCache

    cache = ResumeCache(tmp_path / "idx" / ".resume", {"id": "other-model"}, 64)
    cache.add(["0" * 64], np.ones((1, 64), np.float32))
    cache.close()
    with open(tmp_path / "idx" / ".resume" / "keys.txt", "ab") as f:
        f.write(b"deadbeef")  # a torn last line
    rep = build([tmp_path / "kb"], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None)
    assert rep.resumed == 0 and rep.embedded + rep.deduplicated == rep.chunks


def test_torn_cache_is_cut_back_to_whole_rows(tmp_path):
    from askcolleague.indexing.resume import ResumeCache

    c = ResumeCache(tmp_path, {"id": "m"}, 4)
    c.add(["a" * 64, "b" * 64], np.arange(8, dtype=np.float32).reshape(2, 4))
    c.close()
    with open(tmp_path / "vectors.f32", "ab") as f:
        f.write(b"\1\2\3")  # half a vector with no key
    with open(tmp_path / "keys.txt", "ab") as f:
        f.write(b"c" * 30)
    c = ResumeCache(tmp_path, {"id": "m"}, 4)
    got = c.get_many(["a" * 64, "b" * 64, "c" * 64])
    assert set(got) == {"a" * 64, "b" * 64} and got["b" * 64][1] is True
    assert np.array_equal(got["b" * 64][0], np.arange(4, 8, dtype=np.float32))
    assert (tmp_path / "vectors.f32").stat().st_size == 32 and (tmp_path / "keys.txt").stat().st_size == 130


def test_forgetting_holds_when_the_identifier_shows_up_later(tmp_path):
    """A forgotten person first seen by name alone, and only in a later source with the email that was
    forgotten: their earlier chunks are dropped too (the stream is written again, nothing re-embedded)."""
    root = tmp_path / "kb"
    root.mkdir()
    (root / "a.jsonl").write_text(json.dumps({"id": "t1", "title": "Early", "author": "Sam Late",
                                              "body": "Sam's early post about the VPN gateway."}) + "\n")
    (root / "b.jsonl").write_text(json.dumps({"id": "t2", "title": "Later", "author": "Sam Late <late@acme.test>",
                                              "body": "Sam's later post about printers.",
                                              "comments": [{"id": "c", "author": "Kim Ray <kim@acme.test>",
                                                            "body": "Kim answers about printers."}]}) + "\n")
    path = tmp_path / "idx"
    path.mkdir()
    (path / "forgotten.json").write_text(json.dumps([{
        "person_id": "sam-late-gone", "name": "Sam Late", "emails": ["late@acme.test"], "names": [], "handles": [],
        "with_content": True, "at": "2026-11-30T00:00:00+00:00"}]))
    emb = FakeEmbedder()
    rep = build([root], path, embedder=emb, warn=lambda m: None)
    idx = Index.open(path, embedder=emb)
    try:
        texts = [t for (t,) in idx.store.db.execute("SELECT text FROM chunks")]
        assert texts and not any("Sam" in t for t in texts) and any("Kim answers" in t for t in texts)
        assert [n for (n,) in idx.store.db.execute("SELECT name FROM people")] == ["Kim Ray"]
        assert idx.store.count("chunks") == idx.vectors.fi.ntotal == rep.chunks
    finally:
        idx.close()


def test_progress_lines_say_what_is_left(tmp_path, monkeypatch):
    _messy_corpus(tmp_path / "kb", n_threads=10)
    monkeypatch.setattr(build_mod, "PROGRESS_EVERY", 0.0)
    lines: list[str] = []
    build([tmp_path / "kb"], tmp_path / "idx", embedder=FakeEmbedder(), warn=lambda m: None, log=lines.append)
    assert lines and all(line.startswith("progress: ") for line in lines)
    last = lines[-1]
    assert "4/4 sources (100% of the bytes)" in last and "chunks/s" in last and "left" in last


def test_ctrl_c_stops_the_build_soon_and_keeps_what_it_embedded(tmp_path):
    _messy_corpus(tmp_path / "kb", n_threads=60)
    env = {**fakes_env(), "ASKCOLLEAGUE_BATCH_SIZE": "4", "ASKCOLLEAGUE_BUILD_WINDOW": "8"}
    code = KILLED.replace("build([sys.argv[1]]", "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
                                                 "try:\n    build([sys.argv[1]]") + \
        "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
    code = code.replace("warn=lambda m: None)\nexcept", "warn=lambda m: None)\nexcept")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "kb"), str(tmp_path / "idx")],
                            stdout=subprocess.PIPE, text=True, env=env)
    seen = 0
    for line in proc.stdout:
        n = int(line.split()[1])
        seen += n if n <= 4 else 0
        if seen >= 24:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[0]
    assert "interrupted" in rest and proc.returncode == 0
    assert current_version(tmp_path / "idx") is None
    assert not [p for p in (tmp_path / "idx").iterdir() if p.name.endswith(".tmp")]  # the partial version is gone
    assert (tmp_path / "idx" / ".resume" / "keys.txt").stat().st_size >= 16 * 65  # what it embedded is kept


def test_slow_sources_are_embedded_while_the_rest_are_parsed(tmp_path, monkeypatch):
    """When sources come slowly (OCR, LibreOffice), the chunks waiting are embedded before the window
    is full: parsing and embedding overlap even on a corpus smaller than one window."""
    import time as _time

    root = tmp_path / "kb"
    root.mkdir()
    for i in range(6):
        (root / f"page-{i}.md").write_text(f"# Page {i}\n\n" + f"Scanned page {i} says something. " * 30)
    events: list[tuple[str, float]] = []
    real = build_mod.load_source

    def slow(spec, max_bytes):
        _time.sleep(0.4)
        events.append(("parsed", _time.monotonic()))
        return real(spec, max_bytes)

    class Recording(FakeEmbedder):
        def _embed(self, texts):
            events.append(("embedded", _time.monotonic()))
            return super()._embed(texts)

    monkeypatch.setattr(build_mod, "load_source", slow)
    monkeypatch.setattr(build_mod, "IDLE_FLUSH", 0.1)
    monkeypatch.setenv("ASKCOLLEAGUE_BATCH_SIZE", "2")
    rep = build([root], tmp_path / "idx", embedder=Recording(), warn=lambda m: None, settings=Settings.load())
    assert rep.chunks >= 6 and rep.embedded + rep.deduplicated == rep.chunks
    last_parse = max(t for e, t in events if e == "parsed")
    embeds = [t for e, t in events if e == "embedded"][1:]  # (the first: the calibration's probes)
    assert embeds and min(embeds) < last_parse  # embedding began before the last source was parsed
