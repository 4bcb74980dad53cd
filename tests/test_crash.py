"""Crash safety: builds and updates killed with SIGKILL at random points never leave a broken index."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from fakes import FakeEmbedder, fakes_env
from askcolleague.index import Index, current_version
from askcolleague.indexing.build import build

WORKER = """
import sys, time
from fakes import FakeEmbedder
from askcolleague.indexing.build import build

class Slow(FakeEmbedder):
    def _embed(self, texts):
        time.sleep(0.01 * len(texts))
        return super()._embed(texts)

mode = sys.argv[3]
print("started", flush=True)
if mode == "update":
    build(None, sys.argv[2], embedder=Slow(), update=True, warn=lambda m: None)
else:
    build([sys.argv[1]], sys.argv[2], embedder=Slow(), warn=lambda m: None)
print("done", flush=True)
"""


def _write_corpus(root, generation: int, n_threads: int = 40):
    root.mkdir(exist_ok=True)
    with open(root / "threads.jsonl", "w") as f:
        for t in range(n_threads):
            f.write(json.dumps({
                "id": f"t{t}", "title": f"Thread {t}", "author": f"Person {t % 7} <p{t % 7}@x.test>",
                "body": f"Generation {generation} post {t}. " + "Details about the topic. " * 30,
                "comments": [{"id": f"c{t}", "author": f"Person {(t + 1) % 7} <p{(t + 1) % 7}@x.test>",
                              "body": f"Reply {t} in generation {generation}."}]}) + "\n")
    (root / f"note-{generation}.jsonl").write_text(json.dumps({"id": "n", "title": "Note", "body": f"gen {generation}"}) + "\n")
    for old in root.glob("note-*.jsonl"):
        if old.name != f"note-{generation}.jsonl":
            old.unlink()


def _state(path, emb):
    """(version, generations present) of the live index; asserts it is complete and consistent."""
    idx = Index.open(path, embedder=emb)
    try:
        n = idx.store.count("chunks")
        assert idx.faiss.ntotal == n > 0
        assert idx.manifest["counts"]["chunks"] == n
        gens = {int(t.split("gen ")[1]) for (t,) in idx.store.db.execute(
            "SELECT text FROM chunks WHERE doc_id LIKE '%note-%'")}
        texts = {t for (t,) in idx.store.db.execute("SELECT text FROM chunks WHERE text LIKE 'Generation%'")}
        body_gens = {int(t.split()[1]) for t in texts}
        assert len(gens) == 1 and body_gens == gens, (gens, body_gens)  # never a mix of two states
        return idx.vdir.name, gens.pop()
    finally:
        idx.close()


def test_random_sigkills_leave_previous_or_new_state(tmp_path):
    rng = random.Random(1234)
    emb = FakeEmbedder()
    corpus, path = tmp_path / "kb", tmp_path / "idx"
    _write_corpus(corpus, 0)
    build([corpus], path, embedder=emb, warn=lambda m: None)
    version, gen = _state(path, emb)
    assert gen == 0
    kills = 0
    generation = 0
    while kills < 20:
        generation += 1
        _write_corpus(corpus, generation)
        mode = "update" if kills % 2 else "build"
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(corpus), str(path), mode],
                                stdout=subprocess.PIPE, text=True, env=fakes_env())
        assert proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.0, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        new_version, new_gen = _state(path, emb)
        # either the previous complete state or the new complete state
        assert (new_version, new_gen) == (version, gen) or (new_version != version and new_gen == generation)
        version, gen = new_version, new_gen
    # the next update finishes the job
    build(None, path, embedder=emb, update=True, warn=lambda m: None)
    assert _state(path, emb)[1] == generation
    leftovers = [p.name for p in path.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
