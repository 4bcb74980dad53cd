"""Peak memory (RSS) of an index build and of a loaded Assistant answering questions, ~10k and ~100k chunks.

    python bench/bench_memory.py                       # both sizes (10k docs take long to load)
    python bench/bench_memory.py --sizes small         # ~10k chunks only
    python bench/bench_memory.py --big-embedder torch  # real vectors for ~100k chunks too (~1 h here)

Every measurement runs in a fresh subprocess and reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and RSS after loading.

* small: the synthetic 1k-document corpus (``bench/make_corpus.py --docs 1000``, ~9k chunks incl.
  200 profiles) embedded with the real bundled model (torch).
* big: the synthetic 10k-document corpus (~90k chunks). By default its vectors are
  BENCHMARK-ONLY deterministic random unit vectors (``RandomUnitEmbedder`` in bench/_common.py, same
  384 dims, real tokenizer and chunker), because embedding ~90k chunks with torch on 2 cores takes
  about an hour; memory and exhaustive-search latency do not depend on vector values. The query
  process of the big index still loads the real model and embeds every question with it
  (``RealQueryEmbedder``), and runs with ``abstain_threshold=-1`` so the full answer path is taken.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ROOT, RandomUnitEmbedder, RealQueryEmbedder, corpus_sources, ensure_corpus,  # noqa: E402
                     machine, peak_rss_mb, pct, queries, rss_mb, run_child, time_questions)

SIZES = {"small": 1000, "big": 11500}  # ~10k and ~100k chunks


def child_build(args) -> dict:
    from askcolleague.indexing.build import build
    from askcolleague.index import current_version
    from askcolleague.settings import Settings

    base = rss_mb()
    if args.loader == "fast":
        from _common import use_fast_markdown_loader

        use_fast_markdown_loader()
    emb = _embedder(args.embedder)
    corpus = Path(args.corpus)
    srcs, ppl = corpus_sources(corpus)
    t = time.perf_counter()
    r = build(srcs, args.index, people_files=ppl, settings=Settings.load(), embedder=emb, rebuild=True,
              warn=lambda m: None)
    secs = time.perf_counter() - t
    vdir = current_version(Path(args.index))
    sizes = {f.name: f.stat().st_size for f in vdir.iterdir() if f.is_file()}
    sizes["bm25"] = sum(f.stat().st_size for f in (vdir / "bm25").rglob("*") if f.is_file())
    import askcolleague

    return {"what": "build", "package": askcolleague.__file__, "embedder": args.embedder, "loader": args.loader, "corpus": str(corpus), "docs": r.docs, "chunks": r.chunks,
            "seconds": round(secs, 1), "rss_start_mb": round(base, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "index_mb": round(sum(sizes.values()) / 2**20, 1),
            "vectors_mb": round(sizes.get("vectors.faiss", 0) / 2**20, 1),
            "store_mb": round(sizes.get("store.sqlite", 0) / 2**20, 1), "bm25_mb": round(sizes["bm25"] / 2**20, 1)}


def child_query(args) -> dict:
    from askcolleague.answer import Assistant
    from askcolleague.settings import Settings

    base = rss_mb()
    t = time.perf_counter()
    if args.embedder == "random":
        settings = Settings.load(abstain_threshold=-1.0)
        asst = Assistant.from_index(args.index, settings, embedder=RealQueryEmbedder(args.query_runtime or None))
    else:
        asst = Assistant.from_index(args.index, Settings.load())
    asst.warm_up()
    load_s = time.perf_counter() - t
    after_load = rss_mb()
    qs = queries(Path(args.corpus) if args.corpus else None, n=30)
    ret, lat, _ = time_questions(asst, qs, args.rounds)
    return {"what": "query", "embedder": args.embedder, "query_runtime": asst.embedder.describe().get("runtime", "torch"), "chunks": int(asst.index.faiss.ntotal),
            "questions": len(lat), "load_s": round(load_s, 2), "rss_start_mb": round(base, 1),
            "rss_after_load_mb": round(after_load, 1), "rss_end_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "retrieval_p50_ms": round(pct(ret, 50), 1), "retrieval_p95_ms": round(pct(ret, 95), 1),
            "retrieval_p99_ms": round(pct(ret, 99), 1),
            "ask_p50_ms": round(pct(lat, 50), 1), "ask_p95_ms": round(pct(lat, 95), 1), "ask_p99_ms": round(pct(lat, 99), 1)}


def _embedder(name: str):
    if name == "random":
        return RandomUnitEmbedder()
    if name == "torch":
        from askcolleague.embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if name in ("onnx", "onnx-int8", "onnx-int8-fast"):
        from askcolleague.embed import get_embedder

        return get_embedder(runtime=name)
    raise SystemExit(f"unknown embedder {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    for name in ("_build", "_query"):
        c = sub.add_parser(name)
        c.add_argument("--corpus", default="")
        c.add_argument("--index", required=True)
        c.add_argument("--embedder", default="torch")
        c.add_argument("--rounds", type=int, default=2)
        c.add_argument("--loader", default="real", choices=["real", "fast"])
        c.add_argument("--query-runtime", default="")
    ap.add_argument("--sizes", default="small,big")
    ap.add_argument("--workdir", default="/tmp/askcolleague-bench")
    ap.add_argument("--small-embedder", default="torch")
    ap.add_argument("--big-embedder", default="random", help="random (benchmark-only vectors) or torch")
    ap.add_argument("--reuse", action="store_true", help="skip a build whose index already exists")
    ap.add_argument("--big-loader", default="fast", choices=["real", "fast"],
                    help="fast = BENCHMARK-ONLY minimal .md parser for the 10k-doc build (see _common.py)")
    ap.add_argument("--update", action="store_true",
                    help="after the small build: `index update` with nothing changed / one file changed")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.json"))
    args = ap.parse_args()
    if args.cmd == "_build":
        print(json.dumps(child_build(args)))
        return
    if args.cmd == "_query":
        print(json.dumps(child_query(args)))
        return

    work = Path(args.workdir)
    rows = []
    print(json.dumps({"machine": machine()}))
    for size in [s for s in args.sizes.split(",") if s]:
        corpus = ensure_corpus(work / f"corpus-{SIZES[size]}", SIZES[size])
        emb = args.small_embedder if size == "small" else args.big_embedder
        index = work / f"index-mem-{size}-{emb}"
        from askcolleague.index import current_version

        if not (args.reuse and current_version(index)):
            loader = args.big_loader if size == "big" else "real"
            r = run_child([__file__, "_build", "--corpus", str(corpus), "--index", str(index), "--embedder", emb,
                           "--loader", loader])
            r["size"] = size
            rows.append(r)
            print(json.dumps(r), flush=True)
        r = run_child([__file__, "_query", "--corpus", str(corpus), "--index", str(index), "--embedder", emb])
        r["size"] = size
        rows.append(r)
        print(json.dumps(r), flush=True)
        if size == "small" and args.update:
            from bench_ingest import bench_update

            upd = bench_update(index, sorted((corpus / "docs").rglob("*.md")))
            rows.append({"what": "update", "size": size, "embedder": emb, "chunks": upd["nothing_changed"]["chunks"],
                         "peak_rss_mb": upd["one_file_changed"].get("peak_rss_mb", ""), "detail": upd})
    if any(r.get("loader") == "fast" for r in rows):
        print("NOTE: 'fast' loader rows read the .md files with a BENCHMARK-ONLY minimal parser (same sections "
              "and metadata), not unstructured: the real loader's ~0.5-1 s/doc here would take hours for 10k docs.")
    if any(r.get("embedder") == "random" for r in rows):
        print("NOTE: 'random' rows use BENCHMARK-ONLY random unit vectors (RandomUnitEmbedder) for the index; "
              "memory and search latency do not depend on vector values. Questions are embedded with the real model.")
    print(f"\n{'what':<7}{'size':<7}{'embedder':<10}{'chunks':>8}{'seconds':>9}{'peak RSS MB':>13}{'RSS loaded MB':>15}"
          f"{'ret p50 ms':>12}{'ret p95 ms':>12}{'ask p50 ms':>12}{'ask p95 ms':>12}{'ask p99 ms':>12}{'index MB':>10}")
    for r in rows:
        print(f"{r['what']:<7}{r['size']:<7}{r['embedder']:<10}{r['chunks']:>8}{r.get('seconds', r.get('load_s', 0)):>9}"
              f"{r['peak_rss_mb']:>13}{r.get('rss_after_load_mb', ''):>15}{r.get('retrieval_p50_ms', ''):>12}"
              f"{r.get('retrieval_p95_ms', ''):>12}{r.get('ask_p50_ms', ''):>12}{r.get('ask_p95_ms', ''):>12}"
              f"{r.get('ask_p99_ms', ''):>12}{r.get('index_mb', ''):>10}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
