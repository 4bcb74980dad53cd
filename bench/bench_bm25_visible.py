"""BM25 with access control: corpus-wide statistics against statistics over the visible chunks only.

    python bench/bench_bm25_visible.py [--chunks 100000] [--visible 0.7] [--rounds 5]

Builds the in-memory postings (index/bm25.py) of a synthetic corpus of N chunks in a temp folder, hides a
random share of them, and times the same questions three ways, alternating in one process:
``all`` (no access control), ``global-stats`` (hidden chunks masked out, corpus-wide idf/avgdl: the
old behaviour, whose order leaks words of hidden chunks), ``visible-stats`` (idf/avgdl over the
visible chunks: the current behaviour). Prints p50/p95 ms of each.
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, alternate, machine, pct  # noqa: E402

VOCAB = [f"w{i}" for i in range(20000)]


def corpus(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(VOCAB))]  # Zipf-like: a few common words, a long tail
    return [" ".join(rnd.choices(VOCAB, weights, k=rnd.randint(40, 160))) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--visible", type=float, default=0.7, help="share of chunks the asker may see")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bm25-visible.json"))
    args = ap.parse_args()
    from askcolleague.index import bm25 as lexical

    tmp = Path(tempfile.mkdtemp(prefix="askc-bm25v-"))
    t = time.perf_counter()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE chunks(id INTEGER PRIMARY KEY, text TEXT, title TEXT, section TEXT)")
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, content='chunks', "
               "content_rowid='id', tokenize='porter unicode61')")
    db.executemany("INSERT INTO chunks VALUES (?,?,?,?)", ((i, s, "", "") for i, s in enumerate(corpus(args.chunks))))
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    meta = lexical.build(db, args.chunks, tmp / "bm25")
    print(f"built {args.chunks} chunks, {meta['postings']} postings in {time.perf_counter() - t:.1f} s")
    lex = lexical.Bm25Index(tmp / "bm25")
    rnd = random.Random(1)
    visible = np.array([rnd.random() < args.visible for _ in range(args.chunks)])
    allowed = np.flatnonzero(visible)
    qs = [[rnd.choice(VOCAB[: 2000 if j % 2 else 200]) for j in range(rnd.randint(2, 6))] for _ in range(30)]
    runs = {"all": lambda q: lex.search(q, args.depth),
            "global-stats": lambda q: lex.search(q, args.depth, allowed),
            "visible-stats": lambda q: lex.search(q, args.depth, allowed, visible=visible)}
    ms, same = alternate(runs, qs, args.rounds, same=("global-stats", "visible-stats"))
    print(f"{len(qs)} questions x {args.rounds} rounds, {args.visible:.0%} visible, depth {args.depth}")
    print(f"{'BM25 run':<16}{'p50 ms':>9}{'p95 ms':>9}")
    rows = {}
    for name, xs in ms.items():
        rows[name] = {"p50_ms": round(pct(xs, 50), 2), "p95_ms": round(pct(xs, 95), 2)}
        print(f"{name:<16}{pct(xs, 50):>9.2f}{pct(xs, 95):>9.2f}")
    total = len(qs) * args.rounds
    print(f"top-10 unchanged by the visible statistics: {same}/{total}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "chunks": args.chunks, "visible": args.visible,
                               "depth": args.depth, "runs": rows, "top10_unchanged": same, "compared": total},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
