"""BM25 alone: the in-memory postings (index/bm25.py) against SQLite FTS5's bm25(), same index, same questions.

    python bench/bench_bm25.py --index /tmp/askcolleague-bench/index-mem-big-random \
        --corpus /tmp/askcolleague-bench/corpus-11500 [--rounds 5] [--depth 50]

Alternating rounds in one process; prints p50/p95/p99 ms of each and how often their top 10 agree
(ties at the cut may order differently). The ~100k-chunk index is made by bench_memory.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, RandomUnitEmbedder, alternate, machine, pct, queries  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--corpus", default="", help="a make_corpus.py folder whose queries.txt to use")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--depth", type=int, default=50, help="BM25 results per question (retrieval uses 50)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bm25.json"))
    args = ap.parse_args()
    from askcolleague.index import Index
    from askcolleague.search import Retriever
    from askcolleague.text import question_words

    try:
        idx = Index.open(args.index)
    except Exception:  # a benchmark-only random-vector index: any embedder of its id opens it
        idx = Index.open(args.index, embedder=RandomUnitEmbedder())
    if idx.bm25 is None:
        raise SystemExit(f"{args.index}: no bm25/ postings; rebuild it with this version")
    r = Retriever(idx)
    qs = queries(Path(args.corpus) if args.corpus else None, n=30)
    runs = {"memory": lambda q: r.bm25(q, args.depth, None),
            "fts5": lambda q: r.bm25_fts5(question_words(q), args.depth, None)}
    ms, agree = alternate(runs, qs, args.rounds, same=("memory", "fts5"))
    n = idx.faiss.ntotal
    print(f"index: {args.index} ({n} chunks, {idx.bm25.meta['terms']} terms, {idx.bm25.meta['postings']} postings), "
          f"{len(qs)} questions x {args.rounds} rounds, depth {args.depth}")
    print(f"{'BM25 run':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = {}
    for name, xs in ms.items():
        rows[name] = {"p50_ms": round(pct(xs, 50), 2), "p95_ms": round(pct(xs, 95), 2), "p99_ms": round(pct(xs, 99), 2)}
        print(f"{name:<22}{pct(xs, 50):>9.2f}{pct(xs, 95):>9.2f}{pct(xs, 99):>9.2f}")
    total = len(qs) * args.rounds
    print(f"identical top-10 ids: {agree}/{total}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "index": args.index, "chunks": n, "depth": args.depth,
                               "questions": len(qs), "rounds": args.rounds, "runs": rows,
                               "identical_top10": agree, "compared": total}, indent=2) + "\n")
    idx.close()


if __name__ == "__main__":
    main()
